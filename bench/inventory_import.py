"""CSV import of accounts, on the embedded stack (the same PostgreSQL as `chorus dev`, durable
settings unless --no-fsync).

The inventory app runs in-process and the file goes through `POST /accounts/import` (httpx
ASGITransport): parsing, checks, the accounts, their owners, audit entries and outbox events.
The app serves HTTP only (no relay), so the events stay in the outbox to be counted.

Prints, for N accounts over a few districts and platforms (target: 50,000 in under 30 s):
  dry run    the checks alone
  import     every account new
  again      the same file: nothing changes, nothing is written
  update     every account's display name changed
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from chassis.migrations import upgrade
from chassis.principal import PRINCIPAL_HEADER, sign_principal
from chorus.embedded import EmbeddedBroker, EmbeddedPostgres
from services.inventory.app import create_app
from services.inventory.settings import InventorySettings

INTERNAL_KEY = "bench-internal-key-" + uuid.uuid4().hex
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


def headers() -> dict[str, str]:
    principal = sign_principal(
        INTERNAL_KEY.encode(), sub="bench", grants={"hq": ["regional_manager"]}
    )
    return {PRINCIPAL_HEADER: principal}


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
    work = Path(tempfile.mkdtemp(prefix="chorus-bench-"))
    postgres = EmbeddedPostgres(work / "pg" / "data", durable=not args.no_fsync)
    broker = EmbeddedBroker(work / "broker")
    postgres.start()
    broker.start()
    try:
        url = postgres.url(f"inventory_bench_{uuid.uuid4().hex[:6]}")
        await asyncio.to_thread(upgrade, "inventory", url)
        settings = InventorySettings(
            database_url=url,
            kafka_bootstrap_servers=broker.bootstrap_servers,
            kafka_enable_idempotence=False,
            internal_key=INTERNAL_KEY,
            process_role="web",
        )
        await measure(args, settings)
    finally:
        broker.stop()
        postgres.stop()
        shutil.rmtree(work, ignore_errors=True)


async def measure(args: argparse.Namespace, settings: InventorySettings) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://inventory", timeout=600
        ) as client:
            await create_districts(client)
            body = accounts_csv(args.accounts)
            print(
                f"CSV import of {args.accounts} accounts ({len(body) / 1e6:.1f} MB, "
                f"{len(DISTRICTS)} districts, {len(PLATFORMS)} platforms; "
                f"{'fsync off' if args.no_fsync else 'durable'})"
            )
            await timed(client, "dry run", body, dry_run=True)
            await timed(client, "import", body)
            events, audit = await counts(app)
            print(f"    outbox events {events}, audit entries {audit}")
            await timed(client, "again", body)
            after = await counts(app)
            print(f"    outbox events {after[0]}, audit entries {after[1]} (unchanged)")
            await timed(client, "update", accounts_csv(args.accounts, name="Renamed"))


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
) -> None:
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
    print(
        f"  {label:<8} {seconds:6.2f} s  {result['rows'] / seconds:8.0f} accounts/s  "
        f"(created {result['created']}, updated {result['updated']}, "
        f"unchanged {result['unchanged']})"
    )


async def counts(app: Any) -> tuple[int, int]:
    async with app.state.session_factory() as session:
        events = (await session.execute(text("SELECT count(*) FROM outbox"))).scalar_one()
        audit = (await session.execute(text("SELECT count(*) FROM audit_log"))).scalar_one()
    return int(events), int(audit)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=50_000)
    parser.add_argument("--no-fsync", action="store_true", help="PostgreSQL without fsync")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
