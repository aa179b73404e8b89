"""Each service's migrations: up, down and up again, and models that match them."""

from __future__ import annotations

import asyncio
import uuid
from importlib import import_module

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from chassis.database import create_engine
from chassis.migrations import alembic_config, include_name, upgrade
from tests.conftest import Infrastructure

pytestmark = pytest.mark.asyncio

SERVICES = ["inventory", "calendar", "approvals", "metrics", "webhooks"]

# Databases already migrated know their revision by these ids: they never change, and each
# new revision is appended to its service's chain.
REVISION_CHAINS = {
    "inventory": [f"inventory_000{n}" for n in range(1, 7)],
    "calendar": [f"calendar_000{n}" for n in range(1, 5)],
    "approvals": [f"approvals_000{n}" for n in range(1, 6)],
    "metrics": ["metrics_0001"],
    "webhooks": [f"webhooks_000{n}" for n in range(1, 4)],
}


async def tables_and_triggers(url: str) -> tuple[set[str], set[str]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            tables = set(
                (
                    await conn.execute(
                        text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                    )
                ).scalars()
            )
            triggers = set(
                (
                    await conn.execute(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"))
                ).scalars()
            )
        return tables, triggers
    finally:
        await engine.dispose()


@pytest.mark.parametrize("service", SERVICES)
async def test_revisions_keep_their_ids_and_chain(service: str) -> None:
    config = alembic_config(service, "postgresql+asyncpg://unused/unused")
    scripts = list(ScriptDirectory.from_config(config).walk_revisions())  # head first
    chain = REVISION_CHAINS[service]
    assert [script.revision for script in reversed(scripts)] == chain
    assert [script.down_revision for script in reversed(scripts)] == [None, *chain[:-1]]
    assert all(callable(s.module.upgrade) and callable(s.module.downgrade) for s in scripts)


@pytest.mark.parametrize("service", SERVICES)
async def test_migrations_go_up_down_and_up(infrastructure: Infrastructure, service: str) -> None:
    url = infrastructure.database_url(f"mig_{service}_{uuid.uuid4().hex[:8]}")
    await asyncio.to_thread(upgrade, service, url)  # also creates the database
    tables, triggers = await tables_and_triggers(url)
    assert {"outbox", "inbox", "alembic_version"} <= tables
    assert "outbox_notify" in triggers

    await asyncio.to_thread(command.downgrade, alembic_config(service, url), "base")
    tables, triggers = await tables_and_triggers(url)
    assert tables == {"alembic_version"}
    assert triggers == set()
    if service == "inventory":  # the job queue's functions and types went too
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                left = await conn.scalar(
                    text("SELECT count(*) FROM pg_proc WHERE proname LIKE 'procrastinate%'")
                )
        finally:
            await engine.dispose()
        assert left == 0

    await asyncio.to_thread(upgrade, service, url)
    tables, _ = await tables_and_triggers(url)
    assert {"outbox", "inbox"} <= tables


@pytest.mark.parametrize("service", SERVICES)
async def test_models_match_migrations(infrastructure: Infrastructure, service: str) -> None:
    url = infrastructure.database_url(f"cmp_{service}_{uuid.uuid4().hex[:8]}")
    await asyncio.to_thread(upgrade, service, url)
    metadata = import_module(f"services.{service}.models").Base.metadata

    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": include_name}
        )
        return list(compare_metadata(context, metadata))

    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(differences)
    finally:
        await engine.dispose()
    assert diff == []
