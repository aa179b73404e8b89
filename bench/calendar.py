"""Calendar on the embedded stack: the month view and submission.

Prints:
  month view: p50 / p95 of GET /posts for one month over 100,000 posts on 500 accounts, for
              the whole organisation, a district's subtree, one account, one status and an
              assignee, and a deep page of a month; each beside the same SQL through raw
              asyncpg, and GET /healthz of the same app as the HTTP floor
  submit:     posts submitted per second (lint against a style guide of 12 rules, targets
              checked, the post.submitted event written), by 16 concurrent callers, beside as
              many raw asyncpg transactions of the same count of reads, updates and inserts

Every figure is printed with its floor and the ratio (see bench/benchkit.py). --quick (or
CHORUS_BENCH_QUICK=1) runs smaller sizes.

Run as a module: python -m bench.calendar
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from datetime import UTC, datetime, timedelta
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

DISTRICTS = 20
TEAMS = 100
STATUSES = ["draft"] * 3 + ["in_review", "approved", "scheduled"] + ["published"] * 4
CENTRAL = principal("regina", {"hq": ["regional_manager"]})
D3_MANAGER = principal("dora", {"d3": ["district_manager"]})

SEED_SQL = """
INSERT INTO districts (id, name, kind, parent_id, path) VALUES ('hq', 'HQ', 'region', NULL, 'hq');
INSERT INTO districts (id, name, kind, parent_id, path)
  SELECT 'd' || g, 'District ' || g, 'district', 'hq', ('hq.d' || g)::ltree
  FROM generate_series(1, 20) g;
INSERT INTO districts (id, name, kind, parent_id, path)
  SELECT 'd' || (g % 20 + 1) || '-t' || g, 'Team ' || g, 'team', 'd' || (g % 20 + 1),
         ('hq.d' || (g % 20 + 1) || '.d' || (g % 20 + 1) || '-t' || g)::ltree
  FROM generate_series(1, 100) g;
INSERT INTO calendars (id, district_id, name)
  SELECT gen_random_uuid(), id, name FROM districts WHERE id <> 'hq';
INSERT INTO accounts (id, platform, handle, district_id, status, version)
  SELECT gen_random_uuid(), (ARRAY['x','instagram','facebook','linkedin','tiktok'])[g % 5 + 1],
         'account_' || g, 'd' || ((g % 100 + 1) % 20 + 1) || '-t' || (g % 100 + 1), 'official', 1
  FROM generate_series(0, 499) g
"""


async def seed(app: Any, posts: int, start: datetime) -> None:
    rng = random.Random(7)
    async with app.state.session_factory() as session, session.begin():
        for statement in SEED_SQL.strip().split(";\n"):
            await session.execute(text(statement))
        accounts = (
            await session.execute(text("SELECT a.id, a.platform, a.district_id FROM accounts a"))
        ).all()
        calendars = dict(
            (await session.execute(text("SELECT district_id, id FROM calendars"))).all()
        )
        span = timedelta(days=730).total_seconds()
        post_rows, target_rows = [], []
        for n in range(posts):
            account_id, platform, team = rng.choice(accounts)
            district = team if rng.random() < 0.7 else team.split("-")[0]
            post_id = f"00000000-0000-4000-8000-{n:012d}"
            at = start + timedelta(seconds=rng.uniform(0, span))
            post_rows.append(
                {
                    "id": post_id,
                    "calendar_id": calendars[district],
                    "district_id": district,
                    "title": f"Post {n}",
                    "text": "Lorem ipsum " * rng.randint(1, 20),
                    "publish_at": at,
                    "author": f"user{rng.randint(1, 300)}",
                    "assignee": f"user{rng.randint(1, 300)}",
                    "status": rng.choice(STATUSES),
                    "hash": f"{n:064x}",
                }
            )
            target_rows.append(
                {"post": post_id, "account": account_id, "platform": platform, "at": at}
            )
        await session.execute(
            text(
                "INSERT INTO posts (id, calendar_id, district_id, title, text, publish_at,"
                " author, assignee, status, content_hash) VALUES (CAST(:id AS uuid),"
                " :calendar_id, :district_id, :title, :text, :publish_at, :author, :assignee,"
                " :status, :hash)"
            ),
            post_rows,
        )
        await session.execute(
            text(
                "INSERT INTO post_targets (post_id, account_id, platform, publish_at)"
                " VALUES (CAST(:post AS uuid), :account, :platform, :at)"
            ),
            target_rows,
        )
    await vacuum_analyze(app)


async def bench_month_view(app: Any, start: datetime, n: int) -> None:
    month_from = (start + timedelta(days=400)).replace(day=1, hour=0, minute=0, second=0)
    month_to = (month_from + timedelta(days=32)).replace(day=1)
    window = f"from={month_from.isoformat()}&to={month_to.isoformat()}".replace("+", "%2B")
    async with app.state.session_factory() as session:
        account = await session.scalar(text("SELECT account_id FROM post_targets LIMIT 1"))
        in_month = await session.scalar(
            text("SELECT count(*) FROM posts WHERE publish_at >= :a AND publish_at < :b"),
            {"a": month_from, "b": month_to},
        )
        total = await session.scalar(text("SELECT count(*) FROM posts"))
    queries = [
        ("whole organisation, first page", f"/posts?{window}&limit=100", CENTRAL),
        ("district subtree (filter)", f"/posts?{window}&district_id=d3&limit=100", CENTRAL),
        ("district manager's own scope", f"/posts?{window}&limit=100", D3_MANAGER),
        ("one account", f"/posts?{window}&account_id={account}", CENTRAL),
        ("status scheduled", f"/posts?{window}&status=scheduled&limit=100", CENTRAL),
        ("assignee", f"/posts?{window}&assignee=user42", CENTRAL),
    ]
    async with client_of(app) as client:
        first = await client.get(f"/posts?{window}&limit=100", headers=CENTRAL)
        assert first.status_code == 200, first.text
        page = first.json()
        for _ in range(20):
            if not page.get("next_cursor"):
                break
            page = (
                await client.get(
                    f"/posts?{window}&limit=100&cursor={page['next_cursor']}", headers=CENTRAL
                )
            ).json()
        deep_cursor = page.get("next_cursor")
        if deep_cursor:
            queries.append(
                (
                    "21st page of the month",
                    f"/posts?{window}&limit=100&cursor={deep_cursor}",
                    CENTRAL,
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
            f"month view: {month_from:%Y-%m}, {in_month} of {total} posts, {n} requests each",
            figures,
        )


STYLE_GUIDE: list[dict[str, Any]] = [
    {"kind": "banned_term", "params": {"terms": ["guaranteed", "free money", "cheapest"]}},
    {"kind": "banned_term", "params": {"terms": ["competitor", "lawsuit"]}},
    {
        "kind": "required_disclosure",
        "params": {"keywords": ["sponsored", "partner"], "disclosures": ["#ad", "#sponsored"]},
    },
    {"kind": "hashtag_limit", "severity": "warning", "params": {"max": 5}},
    {"kind": "length_limit", "platform": "x", "params": {"max": 270}},
    {"kind": "length_limit", "platform": "instagram", "params": {"max": 2000}},
    {"kind": "link_domains", "params": {"allowed": ["example.com", "chorus.example"]}},
    {"kind": "alt_text_required", "params": {}},
    {"kind": "min_spacing", "severity": "warning", "params": {"minutes": 30}},
    {"kind": "banned_term", "severity": "warning", "params": {"terms": ["synergy"]}},
    {"kind": "hashtag_limit", "platform": "linkedin", "params": {"max": 3}},
    {"kind": "length_limit", "platform": "facebook", "params": {"max": 5000}},
]


async def bench_submit(app: Any, count: int, concurrency: int) -> None:
    async with client_of(app) as client:
        for rule in STYLE_GUIDE:
            response = await client.post(
                "/style-rules",
                json={"district_id": None, "severity": "error", **rule},
                headers=CENTRAL,
            )
            assert response.status_code == 201, response.text
        async with app.state.session_factory() as session:
            targets = (
                await session.execute(
                    text("SELECT id, district_id FROM accounts ORDER BY handle LIMIT 50")
                )
            ).all()
        rng = random.Random(3)
        ids = []
        for n in range(count):
            account_id, district = rng.choice(targets)
            response = await client.post(
                "/posts",
                json={
                    "district_id": district,
                    "title": f"Submit bench {n}",
                    "text": f"Our news number {n}, read more at https://example.com/{n} #news",
                    "account_ids": [str(account_id)],
                    "publish_at": (
                        datetime.now(UTC) + timedelta(days=30, minutes=7 * n)
                    ).isoformat(),
                },
                headers=CENTRAL,
            )
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
        # One submit, recorded, gives the floor its shape; the others are timed.
        with recorded_statements(app.state.engine) as statements:
            response = await client.post(f"/posts/{ids.pop()}/submit", headers=CENTRAL)
            assert response.status_code == 200, response.text
        queue: asyncio.Queue[str] = asyncio.Queue()
        for post_id in ids:
            queue.put_nowait(post_id)

        async def worker() -> None:
            while not queue.empty():
                post_id = queue.get_nowait()
                response = await client.post(f"/posts/{post_id}/submit", headers=CENTRAL)
                assert response.status_code == 200, response.text

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    floor, floor_label = await write_floor(
        app.state.settings.database_url, len(ids), concurrency, WriteShape.of(statements)
    )
    print_figures(
        f"submit: {len(ids)} posts by {concurrency} concurrent callers, "
        f"{len(STYLE_GUIDE)} style rules",
        [Figure("submit", len(ids) / seconds, "posts/s", floor, floor_label)],
    )


async def run(args: argparse.Namespace) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    async with embedded_app("calendar", max_page_size=500) as app:
        started = time.perf_counter()
        await seed(app, args.posts, start)
        print(f"seeded {args.posts} posts on 500 accounts in {time.perf_counter() - started:.1f} s")
        await bench_month_view(app, start, args.requests)
        await bench_submit(app, args.submits, args.concurrency)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to check it runs")
    parser.add_argument("--posts", type=int, default=None, help="default 100,000")
    parser.add_argument("--requests", type=int, default=None, help="default 200")
    parser.add_argument("--submits", type=int, default=None, help="default 500")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    quick = args.quick or QUICK
    args.posts = args.posts or (10_000 if quick else 100_000)
    args.requests = args.requests or (30 if quick else 200)
    args.submits = args.submits or (60 if quick else 500)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
