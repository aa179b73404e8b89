"""The organisation the fuzz run starts from, one service database at a time.

Each service gets a fresh migrated database, filled through its own API (and, for the read
models that inventory's events fill in production, through the same code the consumers run),
then served by a real uvicorn process. What was created is returned by name, so the hooks can
put those ids into generated requests (see tests/fuzz/hooks.py).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text

from chassis.principal import ROLES
from tests.conftest import Infrastructure
from tests.kit import DISTRICTS, RunningService, as_user, build_app, replicate_districts

Known = dict[str, list[Any]]

# Every role on the top of the tree: the fuzzer may do anything, so rules past the permission
# checks run too. Seeded objects are authored by someone else, so that the rule "nobody decides
# their own work" is not what answers every decision.
FUZZER = {"sub": "fuzzer", "grants": {"hq": sorted(ROLES)}}
SEEDER = as_user("regina", hq=sorted(ROLES))

DISTRICT_IDS = [d["id"] for d in DISTRICTS]
PLATFORMS = ["x", "instagram", "facebook", "linkedin", "youtube", "tiktok", "mastodon"]


def later(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0).isoformat()


async def created(client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> Any:
    response = await client.request(method, url, headers=SEEDER, **kwargs)
    assert response.status_code in (200, 201), f"seeding {method} {url}: {response.text}"
    return response.json()


@contextlib.asynccontextmanager
async def seeding_app(
    infrastructure: Infrastructure, service: str, database_url: str, **overrides: Any
) -> AsyncIterator[RunningService]:
    """The service in-process (HTTP only) on `database_url`, for as long as seeding takes."""
    app = build_app(service, database_url, infrastructure, "web", **overrides)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            yield RunningService(app, client)


async def seed_inventory(service: RunningService) -> Known:
    # Availability checks probe each platform's profile URL: here they go to a closed local
    # port (refused at once), so fuzzed handles are never sent to the platforms' real sites.
    async with service.sessions.begin() as session:
        await session.execute(
            text(
                "UPDATE platforms SET profile_url_template = 'http://127.0.0.1:9/' || key || '/'"
                " || regexp_replace(profile_url_template, '^https?://', '')"
            )
        )
    client = service.client
    for district in DISTRICTS:
        body = {k: v for k, v in district.items() if k != "path"}
        await created(client, "POST", "/districts", json=body)
    accounts = [
        await created(
            client,
            "POST",
            "/accounts",
            json={
                "platform": platform,
                "handle": handle,
                "district_id": district_id,
                "display_name": handle,
                "owners": [{"person": "regina", "role": "primary"}],
                "tags": ["brand"],
            },
        )
        for platform, handle, district_id in (
            ("x", "chorus_fr", "fr"),
            ("instagram", "chorus.paris", "fr-paris"),
            ("x", "chorus_de", "de"),
            ("facebook", "chorus.hq", "hq"),
            ("linkedin", "chorus-fr", "fr"),
            ("youtube", "chorus_paris", "fr-paris"),
        )
    ]
    # Several of each kind: the run drives some into final states early (cancelled, kept).
    requests = [
        await created(
            client,
            "POST",
            "/account-requests",
            json={"district_id": "fr", "platform": "x", "handle": handle, "purpose": "Local"},
        )
        for handle in ("chorus_lyon", "chorus_nice", "chorus_lille")
    ]
    found = [
        await created(
            client,
            "POST",
            "/found-pages",
            json={
                "profile_url": url,
                "district_id": "fr",
                "classification": "rogue",
                "evidence": [{"note": "Uses our logo and asks for card numbers"}],
            },
        )
        for url in (
            "https://x.com/chorus_fake",
            "https://www.instagram.com/chorus.fake/",
            "https://x.com/chorus_fake_fr",
        )
    ]
    return {
        "district_id": DISTRICT_IDS,
        "parent_id": DISTRICT_IDS,
        "under": DISTRICT_IDS,
        "platform": PLATFORMS,
        "account_id": [a["id"] for a in accounts] + [f["account"]["id"] for f in found],
        "request_id": [r["id"] for r in requests],
        "case_id": [f["case"]["id"] for f in found if f.get("case")],
    }


async def seed_calendar(service: RunningService) -> Known:
    from services.calendar.accounts.service import AccountEvent, apply_account
    from services.calendar.models import districts

    await replicate_districts(service, districts)
    account_ids = []
    for platform, handle, district_id in (
        ("x", "chorus_fr", "fr"),
        ("instagram", "chorus.fr", "fr"),
        ("x", "chorus_paris", "fr-paris"),
        ("x", "chorus_de", "de"),
    ):
        account_id = uuid.uuid4()
        event = AccountEvent(
            id=account_id,
            platform=platform,
            handle=handle,
            district_id=district_id,
            status="official",
            version=1,
        )
        async with service.sessions.begin() as session:
            await apply_account(session, event, full=True)
        account_ids.append(str(account_id))

    client = service.client
    calendars = await created(client, "GET", "/calendars")
    calendar_ids = [c["id"] for c in calendars["items"]]
    campaign = await created(
        client,
        "POST",
        "/campaigns",
        json={
            "district_id": "fr",
            "name": "Spring launch",
            "starts_on": "2027-03-01",
            "ends_on": "2027-03-31",
        },
    )
    posts = []
    for title, accounts in (
        ("Spring launch", account_ids[:2]),
        ("Paris opening", account_ids[2:3]),
    ):
        posts.append(
            await created(
                client,
                "POST",
                "/posts",
                json={
                    "district_id": "fr",
                    "title": title,
                    "text": "Our spring collection is here.",
                    "account_ids": accounts,
                    "publish_at": later(days=10),
                    "timezone": "Europe/Paris",
                },
            )
        )
    await created(client, "POST", f"/posts/{posts[1]['id']}/submit")
    rule = await created(
        client,
        "POST",
        "/style-rules",
        json={"kind": "banned_term", "params": {"terms": ["cheap"]}, "district_id": "fr"},
    )
    blackout = await created(
        client,
        "POST",
        "/blackouts",
        json={
            "district_id": "fr",
            "starts_at": later(days=30),
            "ends_at": later(days=31),
            "reason": "Election weekend",
        },
    )
    asset = await created(
        client,
        "POST",
        "/assets",
        files={"file": ("logo.png", PNG, "image/png")},
        data={"district_id": "fr", "title": "Logo"},
    )
    feed = await created(client, "POST", f"/calendars/{calendar_ids[0]}/feed-tokens", json={})
    return {
        "district_id": DISTRICT_IDS,
        "timezone": ["Europe/Paris", "UTC", "America/New_York"],
        "account_id": account_ids,
        "account_ids": [account_ids[:1], account_ids[:2], account_ids[2:3]],
        "calendar_id": calendar_ids,
        "campaign_id": [campaign["id"]],
        "post_id": [p["id"] for p in posts],
        "rule_id": [rule["id"]],
        "blackout_id": [blackout["id"]],
        "asset_id": [asset["id"]],
        "token_id": [feed["id"]],
        "token": [feed["token"]],
    }


async def seed_approvals(service: RunningService) -> Known:
    from services.approvals.models import districts

    await replicate_districts(service, districts)
    client = service.client
    policy = await created(
        client,
        "PUT",
        "/policies/post",
        params={"district_id": "fr"},
        json={
            "steps": [
                {
                    "key": "manager",
                    "name": "District manager",
                    "role": "district_manager",
                    "outside_review": {},  # advisory answers, so the invite routes are reached
                },
                {"key": "legal", "name": "Legal", "role": "legal"},
            ]
        },
    )
    await created(client, "PUT", "/rosters/hq/legal", json={"people": ["laura", "leo"]})
    request_ids = [await open_request(service) for _ in range(3)]
    invite = await created(
        client,
        "POST",
        f"/requests/{request_ids[0]}/steps/0/invites",
        json={"reviewer_name": "Olivia Counsel", "reviewer_email": "olivia@counsel.example"},
    )
    delegation = await created(
        client,
        "POST",
        "/delegations",
        json={
            "delegate": "dana",
            "starts_at": later(days=-1),
            "ends_at": later(days=7),
            "reason": "Holidays",
        },
    )
    return {
        "district_id": DISTRICT_IDS,
        "subject_kind": ["post", "account_request"],
        "role": sorted(ROLES),
        "policy_id": [policy["id"]],
        "version": [policy["current_version"]],
        "request_id": request_ids,
        "position": [0, 1],
        "invite_id": [invite["id"]],
        "token": [invite["token"]],
        "reviewer_email": ["olivia@counsel.example", "legal@chorus.example"],
        "delegate": ["dana", "laura"],
        "delegation_id": [delegation["id"]],
    }


async def open_request(service: RunningService) -> str:
    """An approval request, opened as calendar's post.submitted event opens one."""
    from services.approvals.requests.handlers import CALENDAR_HANDLERS
    from tests.approvals.factories import submitted as post_submitted

    post_id = uuid.uuid4()
    submitted = post_submitted(post_id)
    async with service.sessions.begin() as session:
        await CALENDAR_HANDLERS[submitted.type](session, submitted)
    opened = await created(service.client, "GET", "/requests", params={"subject_id": str(post_id)})
    request_id: str = opened["items"][0]["id"]
    return request_id


# Only the magic number is checked: the library sniffs the type of what it is given.
PNG = b"\x89PNG\r\n\x1a\n" + bytes(256)

SEEDS: dict[str, Callable[[RunningService], Awaitable[Known]]] = {
    "inventory": seed_inventory,
    "calendar": seed_calendar,
    "approvals": seed_approvals,
}
