"""Inventory on the embedded stack (durable PostgreSQL, as `chorus dev` runs it).

Prints:
  search: p50 / p95 of GET /accounts over 100,000 accounts, per kind of query
          (target p95 < 20 ms)
  near-duplicate scan over the same 100,000 accounts (seconds)
  CSV import rate (target: 50,000 accounts in under 30 s), from bench/inventory_import.py

The app runs in-process (httpx ASGITransport), so figures are the service and its database
without the network hop.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from chassis.migrations import upgrade
from chassis.principal import PRINCIPAL_HEADER, sign_principal
from chorus.embedded import EmbeddedBroker, EmbeddedPostgres
from services.inventory.app import create_app
from services.inventory.settings import InventorySettings

KEY = "bench-internal-key-0123456789"
PLATFORMS = ["facebook", "instagram", "x", "linkedin", "youtube", "tiktok"]
WORDS = [
    "orange",
    "sosh",
    "business",
    "careers",
    "news",
    "help",
    "store",
    "music",
    "sport",
    "travel",
    "jobs",
    "labs",
    "events",
    "tv",
    "pro",
    "cloud",
    "cyber",
    "tech",
    "energy",
]


def name_like(rng: random.Random) -> str:
    """A pronounceable made-up brand name: handles of real organisations rarely look alike."""
    syllables = [
        rng.choice("bcdfghjklmnprstvz") + rng.choice("aeiou") for _ in range(rng.randint(3, 5))
    ]
    return "".join(syllables)


def headers(user: str, grants: dict[str, list[str]]) -> dict[str, str]:
    return {PRINCIPAL_HEADER: sign_principal(KEY.encode(), sub=user, grants=grants, ttl=3600)}


SEED_SQL = """
INSERT INTO districts (id, name, kind, parent_id, path) VALUES ('hq', 'HQ', 'region', NULL, 'hq');
INSERT INTO districts (id, name, kind, parent_id, path)
  SELECT 'd' || g, 'District ' || g, 'district', 'hq', ('hq.d' || g)::ltree
  FROM generate_series(1, 20) g;
INSERT INTO districts (id, name, kind, parent_id, path)
  SELECT 'd' || (g % 20 + 1) || '-t' || g, 'Team ' || g, 'team', 'd' || (g % 20 + 1),
         ('hq.d' || (g % 20 + 1) || '.d' || (g % 20 + 1) || '-t' || g)::ltree
  FROM generate_series(1, 100) g;
"""


async def seed(app: Any, accounts: int) -> None:
    rng = random.Random(5)
    teams = [f"d{g % 20 + 1}-t{g}" for g in range(1, 101)]
    statuses = ["official"] * 6 + ["pending", "unofficial", "rogue", "fan", "dormant", "archived"]
    rows = []
    seen: set[tuple[str, str]] = set()
    handles: list[tuple[str, str]] = []
    while len(rows) < accounts:
        platform = rng.choice(PLATFORMS)
        if handles and rng.random() < 0.01:
            # A planted near-duplicate: an existing handle with a suffix, on the same platform.
            platform, base = rng.choice(handles)
            handle = f"{base}_{rng.choice(['fr', 'off', 'news', '2'])}"
        else:
            handle = name_like(rng) + (f"_{rng.choice(WORDS)}" if rng.random() < 0.3 else "")
        if (platform, handle) in seen:
            continue
        seen.add((platform, handle))
        handles.append((platform, handle))
        name = f"{handle.replace('_', ' ').title()}"
        rows.append(
            {
                "platform": platform,
                "handle": handle,
                "key": handle,
                "name": name,
                "district": rng.choice(teams),
                "status": rng.choice(statuses),
                "search": f"{handle} {name.lower()}",
            }
        )
    async with app.state.session_factory() as session, session.begin():
        for statement in SEED_SQL.strip().split(";\n"):
            if statement.strip():
                await session.execute(text(statement))
        await session.execute(
            text(
                "INSERT INTO accounts (id, platform, handle, handle_key, profile_url, display_name,"
                " district_id, status, search_text, created_by) VALUES (gen_random_uuid(),"
                " :platform, :handle, :key, 'https://example.com/' || :handle, :name, :district,"
                " :status, :search, 'bench')"
            ),
            rows,
        )
        await session.execute(
            text(
                "INSERT INTO account_owners (account_id, person, role)"
                " SELECT id, 'owner' || (abs(hashtext(handle)) % 500), 'primary' FROM accounts"
            )
        )
    async with app.state.engine.connect() as conn:
        await conn.execute(text("COMMIT"))
        await conn.execute(text("VACUUM ANALYZE"))


async def timed(client: httpx.AsyncClient, url: str, hdrs: dict[str, str], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        response = await client.get(url, headers=hdrs)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    return samples


async def bench_search(app: Any, n: int) -> None:
    admin = headers("regina", {"hq": ["regional_manager"]})
    manager = headers("dieter", {"d7": ["district_manager"]})
    queries = [
        ("first page, whole organisation", "/accounts", admin),
        ("district subtree", "/accounts?district=d3", admin),
        ("platform + status", "/accounts?platform=instagram&status=official", admin),
        ("text search", "/accounts?q=ba", admin),
        ("text search, rare", "/accounts?q=zuzo", admin),
        ("owner", "/accounts?owner=owner42", admin),
        ("district manager's scope", "/accounts?status=rogue", manager),
        ("deep page (cursor)", None, admin),
        ("presence summary", "/accounts/summary", admin),
    ]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://inventory") as client:
        deep = (await client.get("/accounts?limit=100", headers=admin)).json()
        for _ in range(50):
            deep = (
                await client.get(f"/accounts?limit=100&cursor={deep['next_cursor']}", headers=admin)
            ).json()
        print(f"search over {await count(app)} accounts, {n} requests each (ms)")
        for label, url, hdrs in queries:
            target = url or f"/accounts?cursor={deep['next_cursor']}"
            await timed(client, target, hdrs, 5)  # warm
            samples = sorted(await timed(client, target, hdrs, n))
            p95 = samples[int(len(samples) * 0.95) - 1]
            print(f"  {label:<34} p50 {statistics.median(samples):6.1f}   p95 {p95:6.1f}")


async def count(app: Any) -> int:
    async with app.state.session_factory() as session:
        return int(await session.scalar(text("SELECT count(*) FROM accounts")) or 0)


async def bench_duplicate_scan(app: Any) -> None:
    try:
        from services.inventory.detection.service import scan_near_duplicates
    except ImportError:
        print("near-duplicate scan: not available")
        return
    settings = app.state.settings
    started = time.perf_counter()
    async with app.state.session_factory() as session, session.begin():
        result = await scan_near_duplicates(session, settings)
    print(
        f"near-duplicate scan over {await count(app)} accounts: "
        f"{time.perf_counter() - started:.1f} s ({result})"
    )


async def run(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="chorus-bench-inventory-"))
    postgres = EmbeddedPostgres(work / "pg" / "data")
    broker = EmbeddedBroker(work / "broker")
    postgres.start()
    broker.start()
    try:
        url = postgres.url("bench_inventory")
        await asyncio.to_thread(upgrade, "inventory", url)
        settings = InventorySettings(
            database_url=url,
            internal_key=KEY,
            process_role="web",
            kafka_bootstrap_servers=broker.bootstrap_servers,
            kafka_enable_idempotence=False,
            log_level="WARNING",
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            started = time.perf_counter()
            await seed(app, args.accounts)
            print(f"seeded {args.accounts} accounts in {time.perf_counter() - started:.1f} s")
            await bench_search(app, args.requests)
            await bench_duplicate_scan(app)
    finally:
        broker.stop()
        postgres.stop()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--skip-import", action="store_true")
    args = parser.parse_args()
    asyncio.run(run(args))
    if not args.skip_import:
        subprocess.run([sys.executable, "-m", "bench.inventory_import"], check=True)


if __name__ == "__main__":
    main()
