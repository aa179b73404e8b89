"""iCalendar feeds: tokens (made by readers, shown once, stored hashed, revoked by their
creator or a manager), and the feed itself, parsed back with the `icalendar` package."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import icalendar
import pytest
from sqlalchemy import text

from services.calendar.calendars.service import calendar_for
from tests.calendar.factories import (
    CENTRAL,
    DE_MANAGER,
    FR_MANAGER,
    FR_VIEWER,
    FR_WRITER,
    PARIS_WRITER,
    Accounts,
    create_post,
    seed_districts,
)
from tests.conftest import Infrastructure
from tests.kit import RunningService, as_user, running_service

pytestmark = pytest.mark.asyncio

TRICKY_TITLE = "Soldes, été; -50 %\\ à Paris\nDès lundi: « Ça démarre » 🎉"


async def calendar_id_of(calendar: RunningService, district_id: str | None) -> str:
    async with calendar.sessions.begin() as session:
        return str((await calendar_for(session, district_id)).id)


async def new_token(
    calendar: RunningService,
    district_id: str | None,
    headers: dict[str, str] = FR_VIEWER,
    **body: Any,
) -> dict[str, Any]:
    calendar_id = await calendar_id_of(calendar, district_id)
    response = await calendar.client.post(
        f"/calendars/{calendar_id}/feed-tokens", json=body, headers=headers
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def fetch(calendar: RunningService, url_path: str) -> icalendar.Calendar:
    response = await calendar.client.get(url_path)  # no principal: the token is the credential
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    # RFC 5545: CRLF line ends, content lines folded at 75 octets.
    lines = response.content.split(b"\r\n")
    assert lines[-1] == b""
    assert all(len(line) <= 75 for line in lines), max(lines, key=len)
    assert b"\n" not in response.content.replace(b"\r\n", b"")
    return icalendar.Calendar.from_ical(response.content)


def events(feed: icalendar.Calendar) -> dict[str, icalendar.Event]:
    return {str(event.decoded("uid")): event for event in feed.events}


def uid(post_id: uuid.UUID) -> str:
    return f"{post_id}@chorus"


TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def soon(days: float, hour: int = 9) -> datetime:
    return TODAY + timedelta(days=days, hours=hour)


async def test_a_reader_makes_a_token_shown_once_and_stored_hashed(
    calendar: RunningService,
) -> None:
    created = await new_token(calendar, "fr", label="My Outlook")

    token = created["token"]
    assert len(token) >= 43
    assert created["url_path"] == f"/public/feeds/{token}.ics"
    # Absolute, through the gateway (the public base URL's default: the gateway's local URL).
    assert created["url"] == f"http://localhost:8000/api/calendar/public/feeds/{token}.ics"
    assert created["label"] == "My Outlook"
    assert created["created_by"] == "victor"
    assert created["include_subtree"] is False
    assert (created["revoked_at"], created["last_used_at"]) == (None, None)
    stored = await calendar.scalar(
        "SELECT token_hash FROM feed_tokens WHERE id = :id", id=created["id"]
    )
    assert bytes(stored) == hashlib.sha256(token.encode()).digest()
    # The secret itself is in no column.
    assert (
        await calendar.scalar(
            "SELECT count(*) FROM feed_tokens t WHERE t::text LIKE '%' || :t || '%'", t=token
        )
        == 0
    )

    listed = await calendar.client.get(
        f"/calendars/{created['calendar_id']}/feed-tokens", headers=FR_VIEWER
    )
    assert listed.status_code == 200
    assert [t["id"] for t in listed.json()["items"]] == [created["id"]]
    assert "token" not in listed.json()["items"][0]
    assert token not in listed.text


async def test_the_feed_shows_the_calendars_posts_as_events(
    calendar: RunningService, accounts: Accounts
) -> None:
    tricky = await create_post(
        calendar,
        "fr",
        soon(3),
        title=TRICKY_TITLE,
        text="Line one, with; punctuation\r\nLine two\x07 " + "long " * 400,
        status="scheduled",
        account_ids=[accounts.fr_x, accounts.fr_instagram],
        version=3,
    )
    draft = await create_post(calendar, "fr", soon(-30), title="Back then", status="draft")
    cancelled = await create_post(calendar, "fr", soon(300), title="Later", status="cancelled")
    published = await create_post(calendar, "fr", soon(-1), status="published")
    await create_post(calendar, "fr", soon(-120))  # older than the feed goes back
    await create_post(calendar, "fr", soon(420))  # further than it looks ahead
    await create_post(calendar, "fr", None)  # no slot yet
    paris = await create_post(calendar, "fr-paris", soon(4))  # another calendar
    await create_post(calendar, "de", soon(4))
    await create_post(calendar, None, soon(4))
    token = await new_token(calendar, "fr", label="Outlook")

    before = datetime.now(UTC).replace(microsecond=0)
    feed = await fetch(calendar, token["url_path"])

    assert str(feed["version"]) == "2.0"
    assert "chorus" in str(feed["prodid"]).lower()
    assert str(feed["x-wr-calname"]) == "France"
    found = events(feed)
    assert set(found) == {uid(tricky), uid(draft), uid(cancelled), uid(published)}
    assert uid(paris) not in found

    event = found[uid(tricky)]
    assert event.decoded("summary") == TRICKY_TITLE
    assert event.decoded("dtstart") == soon(3)
    assert event.decoded("dtstart").utcoffset() == timedelta(0)
    assert event.decoded("duration") == timedelta(minutes=15)
    assert event.decoded("dtstamp") >= before
    assert event.decoded("sequence") == 3
    assert str(event["status"]) == "CONFIRMED"
    assert event.decoded("categories") == ["scheduled"]
    assert event.decoded("last-modified").tzinfo is not None
    description = event.decoded("description")
    assert description.startswith("Line one, with; punctuation\nLine two long")
    assert "\x07" not in description
    assert "Status: scheduled" in description
    assert "x @chorus_fr" in description
    assert "instagram @chorus.fr" in description
    assert "Europe/Paris" in description
    assert len(description) < 1300  # the text is cut short; the event is not the post

    assert str(found[uid(draft)]["status"]) == "TENTATIVE"
    assert str(found[uid(cancelled)]["status"]) == "CANCELLED"
    assert str(found[uid(published)]["status"]) == "CONFIRMED"
    starts = [e.decoded("dtstart") for e in feed.events]
    assert starts == sorted(starts)

    last_used = await calendar.scalar(
        "SELECT last_used_at FROM feed_tokens WHERE id = :id", id=token["id"]
    )
    assert last_used is not None


async def test_a_district_feed_never_shows_another_districts_posts(
    calendar: RunningService,
) -> None:
    fr = await create_post(calendar, "fr", soon(1))
    paris = await create_post(calendar, "fr-paris", soon(2))
    de = await create_post(calendar, "de", soon(3))
    company = await create_post(calendar, None, soon(4))

    subtree = await new_token(calendar, "fr", FR_MANAGER, include_subtree=True)
    assert set(events(await fetch(calendar, subtree["url_path"]))) == {uid(fr), uid(paris)}
    paris_only = await new_token(calendar, "fr-paris", PARIS_WRITER, include_subtree=True)
    assert set(events(await fetch(calendar, paris_only["url_path"]))) == {uid(paris)}
    company_only = await new_token(calendar, None, DE_MANAGER)
    assert set(events(await fetch(calendar, company_only["url_path"]))) == {uid(company)}
    de_feed = await new_token(calendar, "de", DE_MANAGER, include_subtree=True)
    assert set(events(await fetch(calendar, de_feed["url_path"]))) == {uid(de)}

    # The company calendar's subtree is every district: only for who reads them all.
    fr_calendar_company = await calendar.client.post(
        f"/calendars/{await calendar_id_of(calendar, None)}/feed-tokens",
        json={"include_subtree": True},
        headers=FR_MANAGER,
    )
    assert fr_calendar_company.status_code == 403
    everything = await new_token(calendar, None, CENTRAL, include_subtree=True)
    assert set(events(await fetch(calendar, everything["url_path"]))) == {
        uid(fr),
        uid(paris),
        uid(de),
        uid(company),
    }


async def test_only_readers_of_the_calendar_make_tokens(calendar: RunningService) -> None:
    fr = await calendar_id_of(calendar, "fr")
    for headers in (DE_MANAGER, PARIS_WRITER):
        response = await calendar.client.post(
            f"/calendars/{fr}/feed-tokens", json={}, headers=headers
        )
        assert response.status_code == 404
        assert response.json()["type"].endswith("/calendar-not-found")
    bad = await calendar.client.post(
        f"/calendars/{fr}/feed-tokens", json={"label": "x" * 201}, headers=FR_VIEWER
    )
    assert bad.status_code == 422
    assert await calendar.scalar("SELECT count(*) FROM feed_tokens") == 0


async def test_a_revoked_or_unknown_token_is_not_found(calendar: RunningService) -> None:
    await create_post(calendar, "fr", soon(1))
    token = await new_token(calendar, "fr", FR_WRITER)
    await fetch(calendar, token["url_path"])

    revoked = await calendar.client.delete(
        f"/calendars/{token['calendar_id']}/feed-tokens/{token['id']}", headers=FR_WRITER
    )
    assert revoked.status_code == 204
    assert (
        await calendar.scalar("SELECT revoked_at FROM feed_tokens WHERE id = :id", id=token["id"])
        is not None
    )

    for path in (
        token["url_path"],
        "/public/feeds/" + "A" * 43 + ".ics",
        "/public/feeds/short.ics",
        "/public/feeds/" + "ab$cd" * 9 + ".ics",
    ):
        response = await calendar.client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"
    assert (await calendar.client.get(token["url_path"])).json()["type"].endswith("/feed-not-found")
    again = await calendar.client.delete(
        f"/calendars/{token['calendar_id']}/feed-tokens/{token['id']}", headers=FR_WRITER
    )
    assert again.status_code == 204
    listed = await calendar.client.get(
        f"/calendars/{token['calendar_id']}/feed-tokens", headers=FR_WRITER
    )
    assert listed.json()["items"] == []
    with_revoked = await calendar.client.get(
        f"/calendars/{token['calendar_id']}/feed-tokens",
        params={"include_revoked": True},
        headers=FR_WRITER,
    )
    assert [t["id"] for t in with_revoked.json()["items"]] == [token["id"]]


async def test_who_lists_and_revokes_tokens(calendar: RunningService) -> None:
    writers = await new_token(calendar, "fr", FR_WRITER, label="fanny's")
    viewers = await new_token(calendar, "fr", FR_VIEWER, label="victor's")
    calendar_id = writers["calendar_id"]

    async def listed(headers: dict[str, str]) -> list[str]:
        response = await calendar.client.get(
            f"/calendars/{calendar_id}/feed-tokens", headers=headers
        )
        assert response.status_code == 200, response.text
        return [t["label"] for t in response.json()["items"]]

    # A manager sees every token of the calendar, newest first; others their own.
    assert await listed(FR_MANAGER) == ["victor's", "fanny's"]
    assert await listed(FR_VIEWER) == ["victor's"]
    denied = await calendar.client.get(f"/calendars/{calendar_id}/feed-tokens", headers=DE_MANAGER)
    assert denied.status_code == 404

    def revoke(token: dict[str, Any], headers: dict[str, str]) -> Any:
        return calendar.client.delete(
            f"/calendars/{calendar_id}/feed-tokens/{token['id']}", headers=headers
        )

    assert (await revoke(writers, FR_VIEWER)).status_code == 404  # not theirs, not a manager
    assert (await revoke(writers, DE_MANAGER)).status_code == 404
    other_calendar = await calendar_id_of(calendar, "fr-paris")
    misplaced = await calendar.client.delete(
        f"/calendars/{other_calendar}/feed-tokens/{writers['id']}", headers=FR_MANAGER
    )
    assert misplaced.status_code == 404
    assert (await calendar.client.get(writers["url_path"])).status_code == 200
    assert (await revoke(writers, FR_MANAGER)).status_code == 204
    assert (await calendar.client.get(writers["url_path"])).status_code == 404
    assert (await calendar.client.get(viewers["url_path"])).status_code == 200

    company = await new_token(calendar, None, FR_VIEWER)
    company_calendar = company["calendar_id"]
    by_district_manager = await calendar.client.delete(
        f"/calendars/{company_calendar}/feed-tokens/{company['id']}", headers=FR_MANAGER
    )
    assert by_district_manager.status_code == 404
    by_central = await calendar.client.delete(
        f"/calendars/{company_calendar}/feed-tokens/{company['id']}", headers=CENTRAL
    )
    assert by_central.status_code == 204


async def test_an_unchanged_feed_is_not_sent_again(calendar: RunningService) -> None:
    post = await create_post(calendar, "fr", soon(2), title="Before")
    token = await new_token(calendar, "fr")
    first = await calendar.client.get(token["url_path"])
    etag = first.headers["etag"]
    assert etag.startswith('W/"')

    same = await calendar.client.get(token["url_path"], headers={"If-None-Match": etag})
    assert same.status_code == 304
    assert same.content == b""
    assert same.headers["etag"] == etag
    listed = await calendar.client.get(
        token["url_path"], headers={"If-None-Match": f'"other", {etag.removeprefix("W/")}'}
    )
    assert listed.status_code == 304

    async with calendar.sessions.begin() as session:
        await session.execute(
            text("UPDATE posts SET title = 'After', version = 2 WHERE id = :id"), {"id": post}
        )
    changed = await calendar.client.get(token["url_path"], headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert str(events(icalendar.Calendar.from_ical(changed.content))[uid(post)]["summary"]) == (
        "After"
    )
    # A revoked token is gone, whatever the client holds.
    await calendar.client.delete(
        f"/calendars/{token['calendar_id']}/feed-tokens/{token['id']}", headers=FR_MANAGER
    )
    gone = await calendar.client.get(token["url_path"], headers={"If-None-Match": etag})
    assert gone.status_code == 404


# --- expiry, renewal, and the managers' view ---------------------------------------------


def about(value: str, expected: datetime) -> bool:
    return abs(datetime.fromisoformat(value) - expected) < timedelta(minutes=1)


async def expire(calendar: RunningService, token_id: str) -> None:
    async with calendar.sessions.begin() as session:
        await session.execute(
            text("UPDATE feed_tokens SET expires_at = now() - interval '1 second' WHERE id = :id"),
            {"id": token_id},
        )


async def test_a_token_expires_and_then_answers_as_a_revoked_one(
    calendar: RunningService,
) -> None:
    await create_post(calendar, "fr", soon(1))
    token = await new_token(calendar, "fr", FR_WRITER, label="Phone")
    now = datetime.now(UTC)
    assert about(token["expires_at"], now + timedelta(days=90))
    assert token["status"] == "active"
    assert token["token_prefix"] == token["token"][:6]
    assert token["district_id"] == "fr"
    short = await new_token(calendar, "fr", FR_WRITER, expires_in_days=7)
    assert about(short["expires_at"], now + timedelta(days=7))

    calendar_id = token["calendar_id"]
    for days in (366, 0, -1, "soon"):
        refused = await calendar.client.post(
            f"/calendars/{calendar_id}/feed-tokens",
            json={"expires_in_days": days},
            headers=FR_WRITER,
        )
        assert refused.status_code == 422, (days, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
    too_long = await calendar.client.post(
        f"/calendars/{calendar_id}/feed-tokens",
        json={"expires_in_days": 366},
        headers=FR_WRITER,
    )
    assert too_long.json()["type"].endswith("/feed-token-lifetime-too-long")
    assert too_long.json()["max_days"] == 365
    assert await calendar.scalar("SELECT count(*) FROM feed_tokens") == 2

    await fetch(calendar, token["url_path"])
    await expire(calendar, token["id"])
    expired = await calendar.client.get(token["url_path"])
    revoked_token = await new_token(calendar, "fr", FR_WRITER)
    await calendar.client.delete(f"/feed-tokens/{revoked_token['id']}", headers=FR_WRITER)
    revoked = await calendar.client.get(revoked_token["url_path"])
    assert expired.status_code == revoked.status_code == 404
    # The same answer but for the path it echoes.
    assert {**expired.json(), "instance": None} == {**revoked.json(), "instance": None}
    assert expired.json()["type"].endswith("/feed-not-found")

    # Still listed to its owner, as expired, so it can be renewed.
    listed = await calendar.client.get(f"/calendars/{calendar_id}/feed-tokens", headers=FR_WRITER)
    statuses = {t["id"]: t["status"] for t in listed.json()["items"]}
    assert statuses[token["id"]] == "expired"
    assert statuses[short["id"]] == "active"

    renewed = await calendar.client.post(
        f"/feed-tokens/{token['id']}/renew", json={"expires_in_days": 30}, headers=FR_WRITER
    )
    assert renewed.status_code == 200, renewed.text
    body = renewed.json()
    assert body["status"] == "active"
    assert about(body["expires_at"], datetime.now(UTC) + timedelta(days=30))
    assert (body["renewed_by"], body["created_by"]) == ("fanny", "fanny")
    assert "token" not in body
    await fetch(calendar, token["url_path"])  # the same URL works again
    default = await calendar.client.post(
        f"/feed-tokens/{token['id']}/renew", json={}, headers=FR_WRITER
    )
    assert about(default.json()["expires_at"], datetime.now(UTC) + timedelta(days=90))
    too_far = await calendar.client.post(
        f"/feed-tokens/{token['id']}/renew", json={"expires_in_days": 400}, headers=FR_WRITER
    )
    assert too_far.status_code == 422
    gone = await calendar.client.post(
        f"/feed-tokens/{revoked_token['id']}/renew", json={}, headers=FR_WRITER
    )
    assert gone.status_code == 409
    assert gone.json()["type"].endswith("/feed-token-revoked")
    assert (await calendar.client.get(revoked_token["url_path"])).status_code == 404


async def test_token_lifetimes_come_from_the_settings(infrastructure: Infrastructure) -> None:
    async with running_service(
        infrastructure, "calendar", feed_token_default_days=7, feed_token_max_days=30
    ) as calendar:
        await seed_districts(calendar)
        token = await new_token(calendar, "fr", FR_WRITER)
        assert about(token["expires_at"], datetime.now(UTC) + timedelta(days=7))
        refused = await calendar.client.post(
            f"/calendars/{token['calendar_id']}/feed-tokens",
            json={"expires_in_days": 31},
            headers=FR_WRITER,
        )
        assert refused.status_code == 422
        assert refused.json()["max_days"] == 30
        renewal = await calendar.client.post(
            f"/feed-tokens/{token['id']}/renew", json={"expires_in_days": 31}, headers=FR_WRITER
        )
        assert renewal.status_code == 422


async def test_managers_list_the_tokens_of_their_subtree(calendar: RunningService) -> None:
    fr = await new_token(calendar, "fr", FR_VIEWER, label="victor fr")
    paris = await new_token(calendar, "fr-paris", PARIS_WRITER, label="pierre paris")
    de = await new_token(calendar, "de", DE_MANAGER, label="dieter de")
    company = await new_token(calendar, None, FR_VIEWER, label="victor company")
    await fetch(calendar, fr["url_path"])

    async def listed(headers: dict[str, str], **params: Any) -> list[str]:
        response = await calendar.client.get("/feed-tokens", params=params, headers=headers)
        assert response.status_code == 200, response.text
        for secret in (fr, paris, de, company):
            assert secret["token"] not in response.text
        return [t["label"] for t in response.json()["items"]]

    assert await listed(FR_MANAGER, district_id="fr") == ["pierre paris", "victor fr"]
    assert await listed(FR_MANAGER) == ["pierre paris", "victor fr"]
    assert await listed(FR_MANAGER, district_id="fr-paris") == ["pierre paris"]
    assert await listed(DE_MANAGER) == ["dieter de"]
    assert await listed(CENTRAL) == [
        "victor company",
        "dieter de",
        "pierre paris",
        "victor fr",
    ]
    assert await listed(CENTRAL, created_by="victor") == ["victor company", "victor fr"]

    response = await calendar.client.get(
        "/feed-tokens", params={"district_id": "fr"}, headers=FR_MANAGER
    )
    [item] = [t for t in response.json()["items"] if t["id"] == fr["id"]]
    assert item == {
        "id": fr["id"],
        "calendar_id": fr["calendar_id"],
        "district_id": "fr",
        "label": "victor fr",
        "include_subtree": False,
        "token_prefix": fr["token"][:6],
        "status": "active",
        "created_by": "victor",
        "created_at": item["created_at"],
        "expires_at": fr["expires_at"],
        "renewed_by": None,
        "renewed_at": None,
        "revoked_at": None,
        "last_used_at": item["last_used_at"],
    }
    assert item["last_used_at"] is not None

    for headers, params, status, slug in (
        (FR_MANAGER, {"district_id": "de"}, 404, "district-not-found"),
        (DE_MANAGER, {"district_id": "fr-paris"}, 404, "district-not-found"),
        (FR_VIEWER, {"district_id": "fr"}, 403, "forbidden"),
        (FR_WRITER, {}, 403, "forbidden"),
        (FR_MANAGER, {"status": "old"}, 422, None),
        (FR_MANAGER, {"cursor": "bm9wZQ"}, 400, "invalid-cursor"),
    ):
        refused = await calendar.client.get("/feed-tokens", params=params, headers=headers)
        assert refused.status_code == status, (params, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
        if slug:
            assert refused.json()["type"].endswith("/" + slug)

    # States: active by default; expired, revoked, all on demand.
    await expire(calendar, paris["id"])
    await calendar.client.delete(f"/feed-tokens/{fr['id']}", headers=FR_MANAGER)
    assert await listed(FR_MANAGER) == []
    assert await listed(FR_MANAGER, status="expired") == ["pierre paris"]
    assert await listed(FR_MANAGER, status="revoked") == ["victor fr"]
    assert await listed(FR_MANAGER, status="all") == ["pierre paris", "victor fr"]

    # Pages, newest first, through the cursor.
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params: dict[str, Any] = {"limit": 1, "status": "all"}
        if cursor:
            params["cursor"] = cursor
        page = (await calendar.client.get("/feed-tokens", params=params, headers=CENTRAL)).json()
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [company["id"], de["id"], paris["id"], fr["id"]]


async def test_managers_renew_and_revoke_their_subtrees_tokens(
    calendar: RunningService,
) -> None:
    paris = await new_token(calendar, "fr-paris", PARIS_WRITER)
    company = await new_token(calendar, None, FR_VIEWER)

    def renew(token: dict[str, Any], headers: dict[str, str]) -> Any:
        return calendar.client.post(f"/feed-tokens/{token['id']}/renew", json={}, headers=headers)

    def revoke(token: dict[str, Any], headers: dict[str, str]) -> Any:
        return calendar.client.delete(f"/feed-tokens/{token['id']}", headers=headers)

    # Another district's manager, or a reader of the district who did not make it: 404.
    for headers in (DE_MANAGER, FR_VIEWER, FR_WRITER):
        for call in (renew, revoke):
            response = await call(paris, headers)
            assert response.status_code == 404, response.text
            assert response.json()["type"].endswith("/feed-token-not-found")
    assert (await renew({"id": uuid.uuid4()}, CENTRAL)).status_code == 404
    await fetch(calendar, paris["url_path"])

    renewed = await renew(paris, FR_MANAGER)
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["renewed_by"] == "francois"
    assert (await renew(company, FR_MANAGER)).status_code == 404
    assert (await renew(company, CENTRAL)).status_code == 200

    assert (await revoke(paris, FR_MANAGER)).status_code == 204
    assert (await revoke(paris, FR_MANAGER)).status_code == 204
    assert (await calendar.client.get(paris["url_path"])).status_code == 404
    assert (await revoke(company, FR_MANAGER)).status_code == 404
    assert (await revoke(company, CENTRAL)).status_code == 204


async def test_a_creator_who_lost_access_cannot_keep_a_token_alive(
    calendar: RunningService,
) -> None:
    before = as_user("lea", fr="viewer")
    after = as_user("lea", de="viewer")  # moved to Germany: no grant on France any more
    token = await new_token(calendar, "fr", before)
    assert (await calendar.client.get(token["url_path"])).status_code == 200
    refused = await calendar.client.post(
        f"/feed-tokens/{token['id']}/renew", json={}, headers=after
    )
    assert refused.status_code == 404
    # Calendar hears of no withdrawn grant: the expiry ends the feed, and the managers see it.
    listed = await calendar.client.get(
        "/feed-tokens", params={"created_by": "lea"}, headers=FR_MANAGER
    )
    assert [t["id"] for t in listed.json()["items"]] == [token["id"]]
    await expire(calendar, token["id"])
    assert (await calendar.client.get(token["url_path"])).status_code == 404


async def test_the_feed_url_starts_with_the_configured_public_base_url(
    infrastructure: Infrastructure,
) -> None:
    async with running_service(
        infrastructure, "calendar", public_base_url="https://chorus.example/edge/"
    ) as calendar:
        await seed_districts(calendar)
        created = await new_token(calendar, "fr", FR_WRITER)
        token = created["token"]
        assert (
            created["url"] == f"https://chorus.example/edge/api/calendar/public/feeds/{token}.ics"
        )
        # What follows the service's base is the service's own route.
        assert created["url"].endswith(created["url_path"])
        await fetch(calendar, created["url_path"])
