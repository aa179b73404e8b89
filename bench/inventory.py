"""Inventory on the embedded stack (durable PostgreSQL, as `chorus dev` runs it).

Prints, every figure beside a floor measured in the same run and the ratio (bench/benchkit.py):
  search: p50 / p95 of GET /accounts over 100,000 accounts, per kind of query, beside the same
          SQL through raw asyncpg; GET /healthz of the same app as the HTTP floor
  near-duplicate scan over the same 100,000 accounts (seconds), beside its SQL through raw
          asyncpg (both rolled back, so both see the same accounts)
  the CSV import, from bench/inventory_import.py (unless --skip-import)

--quick (or CHORUS_BENCH_QUICK=1) runs smaller sizes. Run as a module: python -m bench.inventory

The app runs in-process (httpx ASGITransport), so figures are the service and its database
without the network hop.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import time
from typing import Any

from sqlalchemy import text

from bench.benchkit import (
    QUICK,
    Figure,
    client_of,
    embedded_app,
    http_floor_figures,
    principal,
    print_figures,
    raw_connection,
    read_figures,
    recorded_statements,
    replay,
    statements_label,
    vacuum_analyze,
)
from chassis.database import set_statement_timeout

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
    rows: list[dict[str, str]] = []
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
    await vacuum_analyze(app)


async def bench_search(app: Any, n: int) -> None:
    admin = principal("regina", {"hq": ["regional_manager"]})
    manager = principal("dieter", {"d7": ["district_manager"]})
    queries = [
        ("first page, whole organisation", "/accounts", admin),
        ("district subtree", "/accounts?district_id=d3", admin),
        ("platform + status", "/accounts?platform=instagram&status=official", admin),
        ("text search", "/accounts?q=ba", admin),
        ("text search, rare", "/accounts?q=zuzo", admin),
        ("owner", "/accounts?owner=owner42", admin),
        ("district manager's scope", "/accounts?status=rogue", manager),
        ("deep page (cursor)", None, admin),
        ("presence summary", "/accounts/summary", admin),
    ]
    async with client_of(app) as client:
        deep = (await client.get("/accounts?limit=100", headers=admin)).json()
        for _ in range(50):
            if not deep.get("next_cursor"):
                break
            deep = (
                await client.get(f"/accounts?limit=100&cursor={deep['next_cursor']}", headers=admin)
            ).json()
        conn = await raw_connection(app)
        try:
            figures = []
            for label, url, hdrs in queries:
                if url is None and not deep.get("next_cursor"):
                    continue  # fewer than 51 pages (a --quick run)
                target = url or f"/accounts?cursor={deep['next_cursor']}"
                figures += await read_figures(client, app, conn, label, target, hdrs, n)
        finally:
            await conn.close()
        figures += await http_floor_figures(client, n)
    print_figures(f"search over {await count(app)} accounts, {n} requests each", figures)


async def count(app: Any) -> int:
    async with app.state.session_factory() as session:
        return int(await session.scalar(text("SELECT count(*) FROM accounts")) or 0)


async def bench_duplicate_scan(app: Any) -> None:
    """The scan as its periodic job runs it (its own statement timeout), rolled back so that
    its floor, the same statements through raw asyncpg, finds the same accounts unflagged."""
    try:
        from services.inventory.detection.service import scan_near_duplicates
        from services.inventory.jobs import SCAN_STATEMENT_TIMEOUT_SECONDS
    except ImportError:
        print("near-duplicate scan: not available")
        return
    settings = app.state.settings
    async with app.state.session_factory() as session:
        with recorded_statements(app.state.engine) as statements:
            started = time.perf_counter()
            async with session.begin() as transaction:
                await set_statement_timeout(session, SCAN_STATEMENT_TIMEOUT_SECONDS)
                result = await scan_near_duplicates(session, settings)
                await session.flush()
                await transaction.rollback()
            seconds = time.perf_counter() - started
    conn = await raw_connection(app)
    try:
        started = time.perf_counter()
        await replay(conn, statements, roll_back=True)
        floor = time.perf_counter() - started
    finally:
        await conn.close()
    print_figures(
        f"near-duplicate scan over {await count(app)} accounts ({result}), rolled back",
        [Figure("near-duplicate scan", seconds, "s", floor, statements_label(statements))],
    )


async def run(args: argparse.Namespace) -> None:
    async with embedded_app("inventory") as app:
        started = time.perf_counter()
        await seed(app, args.accounts)
        print(f"seeded {args.accounts} accounts in {time.perf_counter() - started:.1f} s")
        await bench_search(app, args.requests)
        await bench_duplicate_scan(app)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to check it runs")
    parser.add_argument("--accounts", type=int, default=None, help="default 100,000")
    parser.add_argument("--requests", type=int, default=None, help="default 200")
    parser.add_argument("--skip-import", action="store_true")
    args = parser.parse_args()
    quick = args.quick or QUICK
    args.accounts = args.accounts or (10_000 if quick else 100_000)
    args.requests = args.requests or (30 if quick else 200)
    asyncio.run(run(args))
    if not args.skip_import:
        sys.stdout.flush()  # the import's table comes after this one
        environment = {**os.environ, "CHORUS_BENCH_QUICK": "1"} if quick else None
        subprocess.run(
            [sys.executable, "-m", "bench.inventory_import"], check=True, env=environment
        )


if __name__ == "__main__":
    main()
