"""The request's session against a real uvicorn server and a real PostgreSQL: it commits before
the response goes out, so a commit that fails reaches the client as an error and a write is
visible to the very next read; and the service's connections carry statement and
idle-in-transaction timeouts that the background work (relay, consumers, jobs) lives with.

Failures at commit are forced with test-only constraint triggers on inventory's `districts`,
DEFERRABLE INITIALLY DEFERRED, so they run inside COMMIT, keyed on the district's name.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from chassis.outbox import asyncpg_dsn
from tests.chassis.kit import eventually
from tests.conftest import Infrastructure, migrated_database
from tests.gateway.kit import serve
from tests.kit import as_user, build_app

pytestmark = pytest.mark.asyncio

HQ_ADMIN = as_user("regina", hq="regional_manager")

AT_COMMIT_SQL = [
    """
    CREATE FUNCTION test_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.name = 'Doomed' THEN
            RAISE EXCEPTION 'deferred check failed' USING ERRCODE = 'check_violation';
        ELSIF NEW.name = 'Raced' THEN
            RAISE EXCEPTION 'could not serialize' USING ERRCODE = 'serialization_failure';
        ELSIF NEW.name = 'Severed' THEN
            PERFORM pg_terminate_backend(pg_backend_pid());
            PERFORM pg_sleep(5);  -- where the termination is taken, before the commit
        ELSIF NEW.name = 'Slow' THEN
            PERFORM pg_sleep(0.5);
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE CONSTRAINT TRIGGER test_at_commit AFTER INSERT ON districts
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_at_commit()
    """,
    # Not deferred: runs inside the INSERT itself, for the statement timeout.
    """
    CREATE FUNCTION test_sleepy() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.name = 'Sleepy' THEN
            PERFORM pg_sleep(2);
        END IF;
        RETURN NEW;
    END $$
    """,
    """
    CREATE TRIGGER test_sleepy BEFORE INSERT ON districts
    FOR EACH ROW EXECUTE FUNCTION test_sleepy()
    """,
]


async def prepared_database(infrastructure: Infrastructure) -> str:
    database_url = await migrated_database(infrastructure, "inventory")
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        for statement in AT_COMMIT_SQL:
            await conn.execute(statement)
    finally:
        await conn.close()
    return database_url


@contextlib.asynccontextmanager
async def served_inventory(
    infrastructure: Infrastructure, **overrides: Any
) -> AsyncIterator[tuple[str, str]]:
    """Inventory under uvicorn (its lifespan run by uvicorn), the `hq` region created; yields
    the base URL and the database URL."""
    database_url = await prepared_database(infrastructure)
    app = build_app("inventory", database_url, infrastructure, "web", **overrides)
    async with serve(app) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        region = {"id": "hq", "name": "Headquarters", "kind": "region"}
        created = await client.post("/districts", json=region, headers=HQ_ADMIN)
        assert created.status_code == 201, created.text
        yield base_url, database_url


async def stored_district(database_url: str, district_id: str) -> str | None:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        name: str | None = await conn.fetchval(
            "SELECT name FROM districts WHERE id = $1", district_id
        )
        return name
    finally:
        await conn.close()


def team(name: str) -> dict[str, str]:
    return {"id": f"t-{uuid.uuid4().hex[:8]}", "name": name, "kind": "district", "parent_id": "hq"}


@pytest.mark.parametrize(
    ("name", "status", "slug"),
    [
        # A deferred constraint: the data refuses the change, as a unique key would.
        ("Doomed", 409, "commit-conflict"),
        # A concurrent transaction got in the way: the same request may succeed when retried.
        ("Raced", 409, "transaction-conflict"),
        # The connection died during COMMIT: nothing the client did; try again later.
        ("Severed", 503, "database-unavailable"),
    ],
)
async def test_a_commit_that_fails_reaches_the_client_as_a_problem(
    infrastructure: Infrastructure, name: str, status: int, slug: str
) -> None:
    async with served_inventory(infrastructure) as (base_url, database_url):
        body = team(name)
        async with httpx.AsyncClient(base_url=base_url) as client:
            response = await client.post("/districts", json=body, headers=HQ_ADMIN)
            assert response.status_code == status, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["type"] == f"https://chorus.dev/problems/{slug}"
            assert await stored_district(database_url, body["id"]) is None
            # The service carries on: the pool dropped the dead connection, if any.
            fine = team("Fine")
            created = await client.post("/districts", json=fine, headers=HQ_ADMIN)
            assert created.status_code == 201, created.text
        assert await stored_district(database_url, fine["id"]) == "Fine"


async def test_a_write_is_visible_to_the_very_next_read(infrastructure: Infrastructure) -> None:
    # COMMIT takes half a second here: a 201 sent before it would let the read below, on a
    # connection of its own, miss the district.
    async with (
        served_inventory(infrastructure) as (base_url, _database_url),
        httpx.AsyncClient(base_url=base_url) as writer,
        httpx.AsyncClient(base_url=base_url) as reader,
    ):
        for _ in range(3):
            body = team("Slow")
            created = await writer.post("/districts", json=body, headers=HQ_ADMIN)
            assert created.status_code == 201, created.text
            read = await reader.get(f"/districts/{body['id']}", headers=HQ_ADMIN)
            assert read.status_code == 200, read.text
            assert read.json()["name"] == "Slow"


async def test_a_statement_over_the_timeout_is_cancelled_with_a_503(
    infrastructure: Infrastructure,
) -> None:
    async with served_inventory(infrastructure, database_statement_timeout_seconds=0.5) as (
        base_url,
        database_url,
    ):
        body = team("Sleepy")
        async with httpx.AsyncClient(base_url=base_url) as client:
            response = await client.post("/districts", json=body, headers=HQ_ADMIN)
        assert response.status_code == 503, response.text
        assert response.json()["type"].endswith("/database-unavailable")
        assert await stored_district(database_url, body["id"]) is None


async def test_service_connections_carry_the_timeouts(infrastructure: Infrastructure) -> None:
    database_url = await migrated_database(infrastructure, "metrics")
    app = build_app("metrics", database_url, infrastructure, "web")
    async with app.router.lifespan_context(app), app.state.session_factory() as session:
        statement = await session.scalar(text("SHOW statement_timeout"))
        idle = await session.scalar(text("SHOW idle_in_transaction_session_timeout"))
    assert (statement, idle) == ("30s", "1min")


async def test_a_transaction_left_idle_is_ended_by_the_server(
    infrastructure: Infrastructure,
) -> None:
    database_url = await migrated_database(infrastructure, "metrics")
    app = build_app(
        "metrics",
        database_url,
        infrastructure,
        "web",
        database_idle_in_transaction_timeout_seconds=0.3,
    )
    async with app.router.lifespan_context(app), app.state.session_factory() as session:
        await session.execute(text("SELECT 1"))  # a transaction is open now
        await asyncio.sleep(1.0)
        with pytest.raises(DBAPIError):
            await session.execute(text("SELECT 1"))


async def test_background_work_lives_with_short_timeouts(infrastructure: Infrastructure) -> None:
    """The relay, consumers and the job worker idle longer than the idle-in-transaction
    timeout and still work: none of them leaves a transaction open while it waits."""
    database_url = await prepared_database(infrastructure)
    app = build_app(
        "inventory",
        database_url,
        infrastructure,
        "all",
        database_statement_timeout_seconds=1,
        database_idle_in_transaction_timeout_seconds=0.3,
        dormant_scan_cron="* * * * * *",
    )
    async with app.router.lifespan_context(app):
        jobs = app.state.jobs
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            await asyncio.sleep(2.0)  # idle, far past the 0.3 s
            region = {"id": "hq", "name": "Headquarters", "kind": "region"}
            created = await client.post("/districts", json=region, headers=HQ_ADMIN)
            assert created.status_code == 201, created.text

            async def relayed() -> bool:
                async with app.state.session_factory() as session:
                    unsent = await session.scalar(
                        text("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
                    )
                    sent = await session.scalar(
                        text("SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL")
                    )
                return unsent == 0 and bool(sent)

            await eventually(relayed, within=20)
            runs_before = jobs.runs.get("dormant_scan", 0)
            await asyncio.sleep(1.5)

            async def job_ran_again() -> bool:
                return int(jobs.runs.get("dormant_scan", 0)) > runs_before

            await eventually(job_ran_again, within=10)

            async def ready() -> bool:
                # Consumers join their groups in the background; readiness waits for them.
                return (await client.get("/readyz")).status_code == 200

            await eventually(ready, within=30)
            checks = (await client.get("/readyz")).json()["checks"]
        assert checks["background"] == "ok"
