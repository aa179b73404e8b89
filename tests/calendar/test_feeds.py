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
from tests.calendar.conftest import (
    CENTRAL,
    DE_MANAGER,
    FR_MANAGER,
    FR_VIEWER,
    FR_WRITER,
    PARIS_WRITER,
    Accounts,
)
from tests.calendar.test_views import create_post
from tests.kit import RunningService

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
