"""Approvals on the embedded stack: "my pending approvals" and deciding.

Prints:
  my pending: p50 / p95 of GET /approvals/pending over 100,000 requests (a quarter of them
              open), for a district manager, a regional legal approver and a team manager
              and a deep page; each beside the same SQL through raw asyncpg, and GET /healthz
              of the same app as the HTTP floor
  decisions:  decisions per second by 16 concurrent approvers, each closing a request (the
              decision row, the history, the step and request updates, two events), beside as
              many raw asyncpg transactions of the same count of reads, updates and inserts

Every figure is printed with its floor and the ratio (see bench/benchkit.py). --quick (or
CHORUS_BENCH_QUICK=1) runs smaller sizes.

Run as a module: python -m bench.approvals
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from sqlalchemy import text

from bench.benchkit import (
    QUICK,
    Figure,
    WriteShape,
    client_of,
    embedded_app,
    http_floor_figures,
    principal,
    print_figures,
    raw_connection,
    read_figures,
    recorded_statements,
    vacuum_analyze,
    write_floor,
)

D3_MANAGER = principal("dora", {"d3": ["district_manager"]})
HQ_LEGAL = principal("laura", {"hq": ["legal"]})
TEAM_MANAGER = principal("tom", {"d4-t23": ["district_manager"]})

SEED_SQL = """
INSERT INTO districts (id, name, kind, parent_id, path) VALUES ('hq', 'HQ', 'region', NULL, 'hq');
INSERT INTO districts (id, name, kind, parent_id, path)
  SELECT 'd' || g, 'District ' || g, 'district', 'hq', ('hq.d' || g)::ltree
  FROM generate_series(1, 20) g;
INSERT INTO districts (id, name, kind, parent_id, path)
  SELECT 'd' || (g % 20 + 1) || '-t' || g, 'Team ' || g, 'team', 'd' || (g % 20 + 1),
         ('hq.d' || (g % 20 + 1) || '.d' || (g % 20 + 1) || '-t' || g)::ltree
  FROM generate_series(1, 100) g;
INSERT INTO requests (id, subject_kind, subject_id, district_id, title, author, snapshot,
                      content_hash, policy_versions, status, current_position, opened_at,
                      expires_at)
  SELECT gen_random_uuid(), 'post', gen_random_uuid(),
         'd' || ((g % 100 + 1) % 20 + 1) || '-t' || (g % 100 + 1), 'Post ' || g,
         'author' || (g % 300), '{}'::jsonb, md5(g::text), '[]'::jsonb,
         CASE WHEN g % 4 = 0 THEN 'open' ELSE 'granted' END, 0,
         now() - (g || ' seconds')::interval, now() + interval '30 days'
  FROM generate_series(1, :requests) g;
INSERT INTO request_steps (request_id, position, key, name, role, district_id, quorum_mode,
                           quorum_count, reasons, status, approvals, activated_at,
                           request_author, request_opened_at)
  SELECT id, 0, 'manager', 'District manager', 'district_manager', district_id, 'any', 1,
         '[]'::jsonb, CASE WHEN status = 'open' THEN 'active' ELSE 'approved' END, 0, opened_at,
         author, opened_at
  FROM requests;
INSERT INTO request_steps (request_id, position, key, name, role, district_id, quorum_mode,
                           quorum_count, reasons, status, approvals, request_author,
                           request_opened_at)
  SELECT id, 1, 'legal', 'Legal', 'legal', 'hq', 'any', 1, '[]'::jsonb,
         CASE WHEN status = 'open' THEN 'waiting' ELSE 'approved' END, 0, author, opened_at
  FROM requests WHERE (hashtext(id::text) % 3) = 0;
UPDATE request_steps s SET status = 'active', activated_at = now()
  FROM requests r
  WHERE s.request_id = r.id AND r.status = 'open' AND s.position = 1
    AND (hashtext(r.id::text) % 2) = 0;
UPDATE request_steps s SET status = 'approved'
  WHERE s.position = 0 AND EXISTS (SELECT 1 FROM request_steps l WHERE l.request_id = s.request_id
    AND l.position = 1 AND l.status = 'active')
"""


async def seed(app: Any, count: int) -> None:
    async with app.state.session_factory() as session, session.begin():
        for statement in SEED_SQL.strip().split(";\n"):
            await session.execute(
                text(statement), {"requests": count} if ":requests" in statement else {}
            )
    await vacuum_analyze(app)


async def bench_pending(app: Any, n: int) -> None:
    async with app.state.session_factory() as session:
        total = await session.scalar(text("SELECT count(*) FROM requests"))
        active = await session.scalar(
            text("SELECT count(*) FROM request_steps WHERE status = 'active'")
        )
    queries = [
        ("district manager (d3 and its teams)", "/approvals/pending", D3_MANAGER),
        ("regional legal (every legal step)", "/approvals/pending", HQ_LEGAL),
        ("team manager", "/approvals/pending", TEAM_MANAGER),
    ]
    async with client_of(app) as client:
        page = (await client.get("/approvals/pending?limit=100", headers=HQ_LEGAL)).json()
        for _ in range(20):
            if not page.get("next_cursor"):
                break
            page = (
                await client.get(
                    f"/approvals/pending?limit=100&cursor={page['next_cursor']}",
                    headers=HQ_LEGAL,
                )
            ).json()
        if page.get("next_cursor"):
            queries.append(
                (
                    "regional legal, 21st page",
                    f"/approvals/pending?limit=100&cursor={page['next_cursor']}",
                    HQ_LEGAL,
                )
            )
        conn = await raw_connection(app)
        try:
            figures = []
            for label, url, headers in queries:
                figures += await read_figures(client, app, conn, label, url, headers, n)
        finally:
            await conn.close()
        figures += await http_floor_figures(client, n)
    print_figures(
        f"my pending: {total} requests, {active} active steps, {n} requests each", figures
    )


async def bench_decisions(app: Any, count: int, concurrency: int) -> None:
    async with app.state.session_factory() as session:
        ids = list(
            await session.scalars(
                text(
                    "SELECT r.id FROM requests r JOIN request_steps s ON s.request_id = r.id"
                    " WHERE r.status = 'open' AND s.status = 'active' AND s.position = 0"
                    " AND NOT EXISTS (SELECT 1 FROM request_steps l WHERE l.request_id = r.id"
                    " AND l.position = 1) LIMIT :n"
                ),
                {"n": count},
            )
        )
    approver = principal("hannah", {"hq": ["district_manager"]})
    async with client_of(app) as client:

        async def decide(request_id: str) -> None:
            response = await client.post(
                f"/requests/{request_id}/decisions",
                json={"outcome": "approve", "comment": "ok"},
                headers=approver,
            )
            assert response.status_code == 201, response.text

        # One decision, recorded, gives the floor its shape; the others are timed.
        with recorded_statements(app.state.engine) as statements:
            await decide(str(ids.pop()))
        queue: asyncio.Queue[str] = asyncio.Queue()
        for request_id in ids:
            queue.put_nowait(str(request_id))

        async def worker() -> None:
            while not queue.empty():
                await decide(queue.get_nowait())

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    floor, floor_label = await write_floor(
        app.state.settings.database_url, len(ids), concurrency, WriteShape.of(statements)
    )
    print_figures(
        f"decisions: {len(ids)} by {concurrency} concurrent approvers, each closing its request",
        [Figure("decisions", len(ids) / seconds, "decisions/s", floor, floor_label)],
    )


async def run(args: argparse.Namespace) -> None:
    async with embedded_app("approvals") as app:
        started = time.perf_counter()
        await seed(app, args.requests_total)
        print(f"seeded {args.requests_total} requests in {time.perf_counter() - started:.1f} s")
        await bench_pending(app, args.requests)
        await bench_decisions(app, args.decisions, args.concurrency)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to check it runs")
    parser.add_argument("--requests-total", type=int, default=None, help="default 100,000")
    parser.add_argument("--requests", type=int, default=None, help="default 200")
    parser.add_argument("--decisions", type=int, default=None, help="default 1000")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    quick = args.quick or QUICK
    args.requests_total = args.requests_total or (10_000 if quick else 100_000)
    args.requests = args.requests or (30 if quick else 200)
    args.decisions = args.decisions or (100 if quick else 1000)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
