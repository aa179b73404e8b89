"""A calendar's posts as an RFC 5545 VCALENDAR, generated with the `icalendar` package (which
escapes text values and folds lines at 75 octets without splitting a UTF-8 character).

A post is an instant; it shows as a short event (``DURATION`` PT15M) starting at its
publication time in UTC, so every client places it right whatever its own zone. The event's
``UID`` is the post's id, stable across fetches, and ``SEQUENCE`` its version, so subscribers
update an event in place when the post changes. Cancelled and rejected posts stay in the feed
as ``STATUS:CANCELLED`` so clients that already hold them drop them, rather than keeping a
stale copy.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar import Calendar, Event, vText

PRODID = "-//Chorus//Editorial calendar//EN"
# Part of every feed's entity tag: change it when the rendering changes.
FORMAT_VERSION = 1
UID_DOMAIN = "chorus"
EVENT_DURATION = timedelta(minutes=15)
# How often subscribers should refresh (RFC 7986, and the older X-PUBLISHED-TTL).
REFRESH_INTERVAL = timedelta(hours=1)
# A post's text may be 20,000 characters; an event description only needs the gist.
MAX_DESCRIPTION_TEXT = 1000

# Not yet approved: it may not go out as it stands. A failed publication may be retried.
TENTATIVE = frozenset({"draft", "in_review", "changes_requested", "publish_failed"})
CONFIRMED = frozenset({"approved", "scheduled", "published"})
CANCELLED = frozenset({"cancelled", "rejected"})

# TEXT values may not hold control characters other than tab and line breaks (RFC 5545 3.3.11).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class FeedPost:
    """What the feed shows of a post."""

    id: uuid.UUID
    title: str
    text: str
    status: str
    publish_at: datetime
    timezone: str
    accounts: tuple[str, ...]
    version: int
    created_at: datetime
    updated_at: datetime


def ical_status(post_status: str) -> str:
    if post_status in CONFIRMED:
        return "CONFIRMED"
    if post_status in CANCELLED:
        return "CANCELLED"
    return "TENTATIVE"


def clean(value: str) -> str:
    """Line breaks as LF (the package escapes them as \\n) and no other control characters."""
    return _CONTROL.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))


def _local_time(post: FeedPost) -> str:
    try:
        zone = ZoneInfo(post.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return post.timezone
    local = post.publish_at.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M} {post.timezone}"


def description(post: FeedPost) -> str:
    body = post.text
    if len(body) > MAX_DESCRIPTION_TEXT:
        body = body[:MAX_DESCRIPTION_TEXT].rstrip() + "…"
    lines = [
        f"Status: {post.status}",
        f"Accounts: {', '.join(post.accounts) if post.accounts else 'none yet'}",
        f"Planned for: {_local_time(post)}",
    ]
    return clean(f"{body}\n\n" + "\n".join(lines) if body else "\n".join(lines))


def fingerprint(name: str, posts: Sequence[FeedPost]) -> str:
    """A digest of everything the feed shows but its DTSTAMP: equal digests, equal feeds."""
    parts = [str(FORMAT_VERSION), name]
    for p in posts:
        parts += (
            str(p.id),
            str(p.version),
            p.status,
            p.publish_at.isoformat(),
            p.updated_at.isoformat(),
            p.created_at.isoformat(),
            p.timezone,
            p.title,
            p.text,
            *p.accounts,
            "",  # ends the variable-length accounts
        )
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def render(name: str, posts: Iterable[FeedPost], *, now: datetime) -> bytes:
    """The VCALENDAR of `posts`, named `name`, stamped at `now`."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    # Unknown to the package, so it would not escape them as TEXT on its own.
    calendar.add("x-wr-calname", vText(clean(name)))
    calendar.add("refresh-interval", REFRESH_INTERVAL, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", vText("PT1H"))
    stamp = now.astimezone(UTC)
    for post in posts:
        event = Event()
        event.add("uid", f"{post.id}@{UID_DOMAIN}")
        event.add("dtstamp", stamp)
        event.add("dtstart", post.publish_at.astimezone(UTC))
        event.add("duration", EVENT_DURATION)
        event.add("summary", clean(post.title))
        event.add("description", description(post))
        event.add("status", ical_status(post.status))
        event.add("sequence", post.version)
        event.add("created", post.created_at.astimezone(UTC))
        event.add("last-modified", post.updated_at.astimezone(UTC))
        event.add("categories", [post.status])
        calendar.add_component(event)
    body: bytes = calendar.to_ical()
    return body
