"""Reading your own writes across services: consistency tokens.

Services learn of each other's writes from events, a few milliseconds to a few hundred after
the write. A client that writes to one service and at once reads from another would otherwise
see a misleading 404. So:

- A write's response carries ``Chorus-Consistency``, an opaque token naming the events the
  write published. The header is added only after the request's transaction committed, and
  only when the write published something.
- A request that carries such a token, to any service, first waits until every event of the
  token that this service consumes is in its inbox (applied, or dead-lettered: either way
  nothing more will come of it). Events the service does not consume are ignored, so a token
  costs nothing where it does not matter.
- The wait is bounded (``consistency_wait_seconds``, 2 s by default). When it runs out the
  answer is 503 ``not-yet-consistent`` with ``Retry-After``, never a read that looks
  authoritative but predates the write. The time spent waiting is reported in
  ``Server-Timing: consistency;dur=<ms>``.
- A token is input like any other: at most ``MAX_TOKEN_CHARS`` characters and ``MAX_EVENTS``
  events; a malformed one is 400 ``invalid-consistency-token``, an empty one counts as none.
  A write that publishes more events than that (a bulk import) names its last ``MAX_EVENTS``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping, Sequence

from fastapi import Request
from sqlalchemy import Table, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chassis.errors import BadRequest, Problem

HEADER = "chorus-consistency"
MAX_EVENTS = 64
MAX_TOKEN_CHARS = 8192
# Where a session keeps the events it published, and a request the events its commit made
# visible (``request.state``).
SESSION_KEY = "chorus.published"
STATE_KEY = "chorus_consistency"
TIMING_KEY = "chorus_consistency_timing"
TOKEN_VERSION = "1"
# Polling the inbox: quick at first (most events arrive within tens of milliseconds), then
# no more often than every 50 ms.
FIRST_POLL_SECONDS = 0.005
MAX_POLL_SECONDS = 0.05

PublishedEvent = tuple[str, uuid.UUID]
InboxRow = tuple[str, uuid.UUID]  # (consumer, event id)


class InvalidConsistencyToken(BadRequest):
    type_slug = "invalid-consistency-token"
    title = "Invalid consistency token"


class NotYetConsistent(Problem):
    status = 503
    type_slug = "not-yet-consistent"
    title = "Not yet consistent"

    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": "1"}


def record_published(session: AsyncSession, events: Iterable[PublishedEvent]) -> None:
    """Remember, on the session, events it wrote to the outbox (the last ``MAX_EVENTS``)."""
    published: deque[PublishedEvent] = session.info.setdefault(
        SESSION_KEY, deque(maxlen=MAX_EVENTS)
    )
    published.extend(events)


def hand_over(session: AsyncSession, request: Request) -> None:
    """After the commit: the events the request's transaction published become its token."""
    published = session.info.pop(SESSION_KEY, None)
    if published:
        setattr(request.state, STATE_KEY, list(published))


def encode_token(events: Sequence[PublishedEvent]) -> str:
    body = json.dumps([[event_type, str(event_id)] for event_type, event_id in events])
    packed = base64.urlsafe_b64encode(body.encode()).rstrip(b"=").decode()
    return f"{TOKEN_VERSION}.{packed}"


def decode_token(token: str) -> list[PublishedEvent]:
    """The events a token names; `InvalidConsistencyToken` for anything else."""
    if len(token) > MAX_TOKEN_CHARS:
        raise InvalidConsistencyToken(f"A consistency token has at most {MAX_TOKEN_CHARS} chars.")
    version, _, packed = token.strip().partition(".")
    if version != TOKEN_VERSION:
        raise InvalidConsistencyToken(
            "Not a consistency token: send back the Chorus-Consistency header of a write as it is."
        )
    try:
        items = json.loads(base64.urlsafe_b64decode(packed + "=" * (-len(packed) % 4)))
        events = [(str(event_type), uuid.UUID(str(event_id))) for event_type, event_id in items]
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise InvalidConsistencyToken(
            "The consistency token is damaged: send back the header of a write as it is."
        ) from None
    if len(events) > MAX_EVENTS:
        raise InvalidConsistencyToken(f"A consistency token names at most {MAX_EVENTS} events.")
    return events


class ConsistencyHeader:
    """ASGI middleware: puts the token of the events a request's commit published on its
    response. Middleware, because the session commits after the response object is built."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_token(message: Message) -> None:
            if message["type"] == "http.response.start":
                state = scope.get("state", {})
                headers = list(message.get("headers", []))
                if events := state.get(STATE_KEY):
                    headers.append((HEADER.encode(), encode_token(events).encode()))
                if timing := state.get(TIMING_KEY):
                    headers.append((b"server-timing", timing.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_token)


class ConsistencyWait:
    """App-wide dependency: waits, bounded, until this service has applied the events of the
    request's ``Chorus-Consistency`` token that it consumes.

    `consumers_by_type` maps an event type to the names of this service's consumers that
    handle it (their inbox rows say the event was applied)."""

    def __init__(
        self, inbox: Table, consumers_by_type: Mapping[str, Sequence[str]], wait_seconds: float
    ) -> None:
        self.inbox = inbox
        self.consumers_by_type = consumers_by_type
        self.wait_seconds = wait_seconds

    async def __call__(self, request: Request) -> None:
        token = request.headers.get(HEADER, "").strip()
        if not token:  # absent, or empty: a script's first call has no token to send yet
            return
        awaited = self.awaited(decode_token(token))
        if not awaited:
            return
        started = time.monotonic()
        factory: async_sessionmaker[AsyncSession] = request.app.state.session_factory
        missing = await self.wait(factory, awaited)
        waited_ms = (time.monotonic() - started) * 1000
        setattr(request.state, TIMING_KEY, f"consistency;dur={waited_ms:.1f}")
        if missing:
            raise NotYetConsistent(
                f"This service has not yet applied {len(missing)} of the events of the write "
                f"your token names (waited {waited_ms / 1000:.1f} s). Retry shortly with the "
                "same token.",
                pending_events=sorted(str(event_id) for _, event_id in missing),
            )

    def awaited(self, events: Iterable[PublishedEvent]) -> set[InboxRow]:
        """The (consumer, event id) inbox rows that must exist before the request runs."""
        return {
            (consumer, event_id)
            for event_type, event_id in events
            for consumer in self.consumers_by_type.get(event_type, ())
        }

    async def wait(
        self,
        factory: async_sessionmaker[AsyncSession],
        awaited: set[InboxRow],
    ) -> set[InboxRow]:
        """Polls the inbox until every awaited row is there or the time is up; returns what
        is still missing."""
        deadline = time.monotonic() + self.wait_seconds
        pause = FIRST_POLL_SECONDS
        missing = set(awaited)
        while True:
            missing -= await self.applied(factory, missing)
            remaining = deadline - time.monotonic()
            if not missing or remaining <= 0:
                return missing
            await asyncio.sleep(min(pause, remaining))
            pause = min(pause * 2, MAX_POLL_SECONDS)

    async def applied(
        self, factory: async_sessionmaker[AsyncSession], rows: set[InboxRow]
    ) -> set[InboxRow]:
        inbox = self.inbox.c
        async with factory() as session:
            result = await session.execute(
                select(inbox.consumer, inbox.event_id).where(
                    tuple_(inbox.consumer, inbox.event_id).in_(list(rows))
                )
            )
            return {(consumer, event_id) for consumer, event_id in result}


def consumers_by_type(consumers: Iterable[tuple[str, Iterable[str]]]) -> dict[str, list[str]]:
    """(consumer name, event types it handles) pairs, turned around: type -> consumer names."""
    by_type: dict[str, list[str]] = {}
    for name, types in consumers:
        for event_type in types:
            by_type.setdefault(event_type, []).append(name)
    return by_type
