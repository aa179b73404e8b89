"""CSV import of accounts, on the embedded stack (the same PostgreSQL as `chorus dev`, durable
settings unless --no-fsync).

The inventory app runs in-process and the file goes through `POST /accounts/import` (httpx
ASGITransport): parsing, checks, the accounts, their owners, audit entries and outbox events.
The app serves HTTP only (no relay), so the events stay in the outbox to be counted.

Prints, for N accounts over a few districts and platforms, each in seconds beside its floor
measured in the same run and the ratio (bench/benchkit.py):
  dry run    the checks alone; floor: the CSV parsed by the csv module and the accounts and
             owners of its keys read back, raw asyncpg
  import     every account new; floor: a raw COPY of the same rows (the accounts, owners,
             audit entries and events the import wrote) into copies of their tables, with
             their indexes, in one transaction
  again      the same file: nothing changes, nothing is written; floor as the dry run's
  update     every account's display name changed; floor: a raw COPY of the updated accounts
             into a temporary table, one UPDATE ... FROM it, and a COPY of the audit entries
             and events the update wrote

--quick (or CHORUS_BENCH_QUICK=1) imports 5,000 accounts.
Run as a module: python -m bench.inventory_import
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import time
import uuid
from typing import Any

import asyncpg
import httpx

from bench.benchkit import (
    INTERNAL_KEY,
    QUICK,
    Figure,
    embedded_stack,
    principal,
    print_figures,
    quiet_logs,
    raw_connection,
)
from chassis.migrations import upgrade
from services.inventory.app import create_app
from services.inventory.settings import InventorySettings

DISTRICTS = ("fr", "de", "it", "es", "uk", "be", "nl", "pl")
PLATFORMS = ("instagram", "x", "tiktok", "facebook", "youtube", "threads", "linkedin", "pinterest")
STATUSES = ("official", "official", "pending", "unofficial")
COLUMNS = (
    "platform",
    "handle",
    "display_name",
    "district_id",
    "status",
    "owner_primary",
    "owner_backup",
    "language",
    "country",
    "tags",
    "purpose",
)
# The tables an import writes, and those of them whose new rows are told by a growing id.
WRITTEN = ("accounts", "account_owners", "audit_log", "outbox")
APPEND_ONLY = ("audit_log", "outbox")


def headers() -> dict[str, str]:
    return principal("bench", {"hq": ["regional_manager"]})


def accounts_csv(count: int, *, name: str = "Account") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for i in range(count):
        writer.writerow(
            (
                PLATFORMS[i % len(PLATFORMS)],
                f"bench{i:07d}",
                f"{name} {i}",
                DISTRICTS[i % len(DISTRICTS)],
                STATUSES[i % len(STATUSES)],
                f"person{i % 700}",
                f"person{(i + 1) % 700}",
                "fr",
                "FR",
                "brand|bench",
                "Benchmark account",
            )
        )
    return out.getvalue().encode()


async def run(args: argparse.Namespace) -> None:
    quiet_logs()
    async with embedded_stack(durable=not args.no_fsync) as stack:
        url = stack.postgres.url(f"inventory_bench_{uuid.uuid4().hex[:6]}")
        await asyncio.to_thread(upgrade, "inventory", url)
        settings = InventorySettings(
            database_url=url,
            kafka_bootstrap_servers=stack.broker.bootstrap_servers,
            kafka_enable_idempotence=False,
            internal_key=INTERNAL_KEY,
            process_role="web",
            log_level="WARNING",
        )
        await measure(args, settings)


async def measure(args: argparse.Namespace, settings: InventorySettings) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        conn = await raw_connection(settings.database_url)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://inventory", timeout=600
        ) as client:
            await create_districts(client)
            body = accounts_csv(args.accounts)
            renamed = accounts_csv(args.accounts, name="Renamed")
            figures, notes = [], []

            seconds, result = await timed(client, "dry run", body, dry_run=True)
            floor = await lookup_floor(conn, body)
            figures.append(Figure(f"dry run   {result}", seconds, "s", floor, LOOKUP_LABEL))

            since = await high_water(conn)
            seconds, result = await timed(client, "import", body)
            floor = await copy_floor(conn, since, update=False)
            figures.append(Figure(f"import    {result}", seconds, "s", floor, COPY_LABEL))
            events, audit = await counts(conn)
            notes.append(f"after the import: outbox events {events}, audit entries {audit}")

            seconds, result = await timed(client, "again", body)
            floor = await lookup_floor(conn, body)
            figures.append(Figure(f"again     {result}", seconds, "s", floor, LOOKUP_LABEL))
            after = await counts(conn)
            notes.append(
                f"after the same file again: outbox events {after[0]}, audit entries {after[1]}"
                + (" (unchanged)" if after == (events, audit) else " (CHANGED)")
            )

            since = await high_water(conn)
            seconds, result = await timed(client, "update", renamed)
            floor = await copy_floor(conn, since, update=True)
            figures.append(Figure(f"update    {result}", seconds, "s", floor, UPDATE_LABEL))
        await conn.close()
    print_figures(
        f"CSV import of {args.accounts} accounts ({len(body) / 1e6:.1f} MB, "
        f"{len(DISTRICTS)} districts, {len(PLATFORMS)} platforms; "
        f"{'fsync off' if args.no_fsync else 'durable'})",
        figures,
        notes,
    )


async def create_districts(client: httpx.AsyncClient) -> None:
    bodies: list[dict[str, Any]] = [{"id": "hq", "name": "Headquarters", "kind": "region"}]
    bodies += [
        {"id": d, "name": d.upper(), "kind": "district", "parent_id": "hq"} for d in DISTRICTS
    ]
    for body in bodies:
        response = await client.post("/districts", json=body, headers=headers())
        response.raise_for_status()


async def timed(
    client: httpx.AsyncClient, label: str, body: bytes, *, dry_run: bool = False
) -> tuple[float, str]:
    """Seconds of one import and what it did."""
    started = time.perf_counter()
    response = await client.post(
        "/accounts/import",
        params={"dry_run": str(dry_run).lower()},
        content=body,
        headers={**headers(), "content-type": "text/csv"},
    )
    seconds = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"{label}: {response.status_code} {response.text[:2000]}")
    result = response.json()
    return seconds, (
        f"created {result['created']}, updated {result['updated']}, unchanged {result['unchanged']}"
    )


async def counts(conn: asyncpg.Connection) -> tuple[int, int]:
    events = await conn.fetchval("SELECT count(*) FROM outbox")
    audit = await conn.fetchval("SELECT count(*) FROM audit_log")
    return int(events), int(audit)


# --- the floors -----------------------------------------------------------------------------

LOOKUP_LABEL = "csv.reader + the accounts and owners of its keys read, raw asyncpg"
COPY_LABEL = "raw COPY of the same rows into copies of their tables (indexes too), asyncpg"
UPDATE_LABEL = "raw COPY into a temp table + 1 UPDATE ... FROM + COPY of audit and events"


async def lookup_floor(conn: asyncpg.Connection, body: bytes) -> float:
    """What any import must do before deciding anything: parse the file and read back the
    accounts (and their owners) it names."""
    started = time.perf_counter()
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    async with conn.transaction():
        accounts = await conn.fetch(
            "SELECT a.* FROM accounts a JOIN unnest($1::text[], $2::text[]) AS k(platform, key)"
            " ON a.platform = k.platform AND a.handle_key = k.key",
            [r["platform"] for r in rows],
            [r["handle"].lower() for r in rows],
        )
        await conn.fetch(
            "SELECT * FROM account_owners WHERE account_id = ANY($1::uuid[])",
            [a["id"] for a in accounts],
        )
    return time.perf_counter() - started


async def high_water(conn: asyncpg.Connection) -> dict[str, int]:
    return {
        table: int(await conn.fetchval(f"SELECT coalesce(max(id), 0) FROM {table}"))
        for table in APPEND_ONLY
    }


async def copy_floor(conn: asyncpg.Connection, since: dict[str, int], *, update: bool) -> float:
    """Seconds to write the rows the import just wrote, by COPY into copies of their tables
    (LIKE ... INCLUDING ALL: the same columns, defaults, checks and indexes; not the foreign
    keys nor the outbox's NOTIFY trigger), in one durable transaction. For an update, the
    copies hold the accounts first and the floor updates them from a COPY."""
    written: dict[str, list[Any]] = {"accounts": await conn.fetch("SELECT * FROM accounts")}
    if not update:
        written["account_owners"] = await conn.fetch("SELECT * FROM account_owners")
    for table in APPEND_ONLY:
        written[table] = await conn.fetch(
            f"SELECT * FROM {table} WHERE id > $1 ORDER BY id", since[table]
        )
    for table in WRITTEN:
        await conn.execute(
            f"DROP TABLE IF EXISTS bench_floor_{table};"
            f"CREATE TABLE bench_floor_{table} (LIKE {table} INCLUDING ALL)"
        )
    columns = {table: list(rows[0].keys()) for table, rows in written.items() if rows}
    try:
        if update:  # the accounts as they were, to be updated
            await conn.copy_records_to_table(
                "bench_floor_accounts", records=written["accounts"], columns=columns["accounts"]
            )
        started = time.perf_counter()
        async with conn.transaction():
            for table, rows in written.items():
                if not rows:
                    continue
                if update and table == "accounts":
                    await conn.execute(
                        "CREATE TEMP TABLE bench_floor_changes (LIKE accounts) ON COMMIT DROP"
                    )
                    await conn.copy_records_to_table(
                        "bench_floor_changes", records=rows, columns=columns[table]
                    )
                    assignments = ", ".join(f"{c} = c.{c}" for c in columns[table] if c != "id")
                    await conn.execute(
                        f"UPDATE bench_floor_accounts a SET {assignments}"
                        " FROM bench_floor_changes c WHERE a.id = c.id"
                    )
                else:
                    await conn.copy_records_to_table(
                        f"bench_floor_{table}", records=rows, columns=columns[table]
                    )
        return time.perf_counter() - started
    finally:
        for table in WRITTEN:
            await conn.execute(f"DROP TABLE IF EXISTS bench_floor_{table}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to check it runs")
    parser.add_argument("--accounts", type=int, default=None, help="default 50,000")
    parser.add_argument("--no-fsync", action="store_true", help="PostgreSQL without fsync")
    args = parser.parse_args()
    args.accounts = args.accounts or (5_000 if args.quick or QUICK else 50_000)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
