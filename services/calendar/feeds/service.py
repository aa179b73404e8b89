"""iCalendar feeds of calendars, behind revocable, expiring tokens.

A calendar client (Outlook, Google Calendar) cannot send our credentials, so a feed URL
carries a secret token instead: ``secrets.token_urlsafe(32)``, shown once at creation. Only its
sha256 is kept, so a leaked database does not leak working URLs, with its first
``PREFIX_LENGTH`` characters so people can tell their URLs apart in a list (a few characters of
43 leave the rest unguessable). A token is looked up by that hash and refused once revoked or
expired: both answer the same 404, so a URL tells nobody which it was.

Anyone who reads a calendar may make a token for it; the token then shows what the calendar
holds to whoever has the URL until it expires or is revoked. Every token expires:
``expires_in_days`` at creation, by default ``CALENDAR_FEED_TOKEN_DEFAULT_DAYS`` (90), at most
``CALENDAR_FEED_TOKEN_MAX_DAYS`` (365). Its creator or a manager renews it (from now, for the
days asked, within the same maximum), an expired one too; a revoked token stays revoked.

Who manages tokens: the creator their own, a manager of the calendar's district or above it
(the central team for the company-wide calendar) every token of those calendars:
``GET /feed-tokens`` lists a district subtree's tokens to its managers, and they renew and
revoke any of them. Anybody else gets 404 for a token, as if it did not exist.

A token does not follow its creator's later loss of access by itself. Calendar learns grants
only from the principal of each request and hears of no grant being withdrawn, so there is
nothing to re-check a stored grant against; recording the creator's grants at creation would
only repeat what was true then. What bounds a token instead: its expiry (a token outlives its
creator's access by at most the maximum lifetime); renewal, which needs the renewer's current
principal to still read the calendar (or manage it), so a creator who lost access cannot extend
it; and the managers' list, where ``created_by`` finds a leaver's tokens to revoke them.
``include_subtree`` adds the posts of the districts below the calendar's district; on the
company-wide calendar that is every district, so only someone who reads every district may ask
for it, or renew such a token.

A feed shows posts from 90 days back to 400 days ahead, at most ``MAX_FEED_POSTS`` of them
(the earliest first).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.districts import Scope, can_read, is_central
from chassis.errors import Conflict, Forbidden, NotFound, Unprocessable
from chassis.openapi import PublicLinks
from chassis.pagination import Page, PageRequest, keyset_page
from services.calendar.access import tree
from services.calendar.calendars.service import get_visible
from services.calendar.feeds import ical, repository
from services.calendar.feeds.schemas import (
    FeedTokenCreate,
    FeedTokenCreated,
    FeedTokenFilter,
    FeedTokenOut,
    FeedTokenRenew,
    FeedTokenStatus,
)
from services.calendar.models import Calendar, FeedToken
from services.calendar.repository import insert_row
from services.calendar.schemas import response_of

PUBLIC_PATH = "/public/feeds/{token}.ics"
FEED_PAST = timedelta(days=90)
FEED_AHEAD = timedelta(days=400)
MAX_FEED_POSTS = 5000
# Active tokens one person may hold on one calendar; enough for every device they own.
MAX_TOKENS_PER_USER = 20
# Calendar clients poll every few minutes; one write per token and minute is plenty.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# What token_urlsafe makes; anything else cannot be a token and is not looked up.
TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{32,100}$")
# Characters of the token kept in the clear (of 43): enough to tell URLs apart.
PREFIX_LENGTH = 6


class FeedNotFound(NotFound):
    type_slug = "feed-not-found"
    title = "Feed not found"


class FeedTokenNotFound(NotFound):
    type_slug = "feed-token-not-found"
    title = "Feed token not found"


class TooManyFeedTokens(Conflict):
    type_slug = "too-many-feed-tokens"
    title = "Too many active feed tokens on this calendar"


class FeedTokenRevoked(Conflict):
    type_slug = "feed-token-revoked"
    title = "The feed token was revoked"


class FeedTokenLifetimeTooLong(Unprocessable):
    type_slug = "feed-token-lifetime-too-long"
    title = "A feed token cannot live that long"


@dataclass(frozen=True)
class TokenLifetime:
    """How long tokens live, from the settings."""

    default_days: int
    max_days: int

    def expiry(self, days: int | None, now: datetime) -> datetime:
        wanted = self.default_days if days is None else days
        if wanted > self.max_days:
            raise FeedTokenLifetimeTooLong(
                f"A feed token lives at most {self.max_days} days; renew it when it runs out.",
                max_days=self.max_days,
            )
        return now + timedelta(days=wanted)


def token_status(token: FeedToken, now: datetime) -> FeedTokenStatus:
    if token.revoked_at is not None:
        return FeedTokenStatus.REVOKED
    if token.expires_at <= now:
        return FeedTokenStatus.EXPIRED
    return FeedTokenStatus.ACTIVE


def token_out(token: FeedToken, district_id: str | None, now: datetime) -> FeedTokenOut:
    return response_of(
        FeedTokenOut, token, district_id=district_id, status=token_status(token, now)
    )


@dataclass(frozen=True)
class Feed:
    body: bytes | None  # None: the client's copy (If-None-Match) is current
    etag: str


def etag_matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 weak comparison of If-None-Match (a list of tags, or *) with `etag`."""
    if if_none_match.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == opaque for tag in if_none_match.split(","))


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _token_page(
    rows: Sequence[tuple[FeedToken, str | None]], page: PageRequest
) -> Page[FeedTokenOut]:
    """The page of tokens read newest first, each with its calendar's district."""
    now = datetime.now(UTC)
    return keyset_page(
        rows,
        page,
        key=lambda row: (row[0].created_at, row[0].id),
        item=lambda row: token_out(row[0], row[1], now),
    )


def _can_manage(scope: Scope, path: str | None) -> bool:
    return is_central(scope) if path is None else scope.can_manage(path)


class FeedService:
    async def create_token(
        self,
        session: AsyncSession,
        scope: Scope,
        calendar_id: uuid.UUID,
        data: FeedTokenCreate,
        lifetime: TokenLifetime,
        links: PublicLinks,
    ) -> FeedTokenCreated:
        now = datetime.now(UTC)
        expires_at = lifetime.expiry(data.expires_in_days, now)
        found, path = await get_visible(session, scope, calendar_id, for_update=True)
        if (
            path is None
            and data.include_subtree
            and not await self._reads_everything(session, scope)
        ):
            raise Forbidden(
                "A feed of the company-wide calendar with its subtree shows every district's "
                "posts; only someone who reads every district may make one."
            )
        active = await repository.count_active_tokens(session, found.id, scope.principal.sub)
        if active >= MAX_TOKENS_PER_USER:
            raise TooManyFeedTokens(
                f"You hold {MAX_TOKENS_PER_USER} active tokens on this calendar; revoke one first."
            )
        token = secrets.token_urlsafe(32)
        row = FeedToken(
            id=uuid.uuid4(),
            calendar_id=found.id,
            token_hash=token_hash(token),
            label=data.label,
            include_subtree=data.include_subtree,
            created_by=scope.principal.sub,
            expires_at=expires_at,
            token_prefix=token[:PREFIX_LENGTH],
        )
        await insert_row(session, row)
        return FeedTokenCreated(
            **token_out(row, found.district_id, now).model_dump(),
            token=token,
            url_path=PUBLIC_PATH.format(token=token),
            url=links.to(PUBLIC_PATH.format(token=token)),
        )

    async def _reads_everything(self, session: AsyncSession, scope: Scope) -> bool:
        roots = await repository.list_root_paths(session)
        return all(scope.can_read(path) for path in roots)

    async def list_tokens(
        self,
        session: AsyncSession,
        scope: Scope,
        calendar_id: uuid.UUID,
        page: PageRequest,
        *,
        include_revoked: bool = False,
    ) -> Page[FeedTokenOut]:
        """The calendar's tokens, newest first: all of them for a manager of the calendar,
        the caller's own for anyone else."""
        found, path = await get_visible(session, scope, calendar_id)
        rows = await repository.list_calendar_tokens(
            session,
            found.id,
            created_by=None if _can_manage(scope, path) else scope.principal.sub,
            include_revoked=include_revoked,
            after=page.after_key(datetime, uuid.UUID),
            fetch=page.fetch,
        )
        return _token_page([(token, found.district_id) for token in rows], page)

    async def revoke(
        self, session: AsyncSession, scope: Scope, calendar_id: uuid.UUID, token_id: uuid.UUID
    ) -> None:
        """Revoke the token; revoking a revoked token changes nothing."""
        found, path = await get_visible(session, scope, calendar_id)
        row = await repository.lock_calendar_token(session, found.id, token_id)
        mine = row is not None and row.created_by == scope.principal.sub
        manager = _can_manage(scope, path)
        # Someone else's token is not even listed to a non-manager: 404, not 403.
        if row is None or not (mine or manager):
            raise FeedTokenNotFound(f"No feed token {token_id} on this calendar.")
        if row.revoked_at is None:
            row.revoked_at = func.now()
            await session.flush()

    # Managers' view: tokens by id, across the calendars of a district subtree ------------

    async def list_managed(
        self,
        session: AsyncSession,
        scope: Scope,
        page: PageRequest,
        *,
        district_id: str | None,
        which: FeedTokenFilter,
        created_by: str | None,
    ) -> Page[FeedTokenOut]:
        """The tokens of the calendars of a district and the districts below it, newest
        first, for a manager there (404 for a district the caller cannot read, 403 if they
        do not manage it). Without a district: the tokens of every calendar the caller
        manages (the company-wide one for the central team)."""
        if district_id is not None:
            path = await tree.district_path(session, scope, district_id)
            scope.require_manage(path, f"the feed tokens of district {district_id!r}")
            roots: tuple[str, ...] = (path,)
            company = False
        else:
            roots = scope.manage_paths
            company = is_central(scope)
            if not roots and not company:
                raise Forbidden("Listing feed tokens needs a manager role.")
        rows = await repository.managed_tokens(
            session,
            roots=roots,
            company=company,
            which=which,
            created_by=created_by,
            after=page.after_key(datetime, uuid.UUID),
            fetch=page.fetch,
        )
        return _token_page(rows, page)

    async def renew(
        self,
        session: AsyncSession,
        scope: Scope,
        token_id: uuid.UUID,
        data: FeedTokenRenew,
        lifetime: TokenLifetime,
    ) -> FeedTokenOut:
        """The token works for `expires_in_days` (the default without it) from now, expired
        or not; by its creator, if they still read the calendar, or a manager of it. A
        revoked token stays revoked (409)."""
        now = datetime.now(UTC)
        expires_at = lifetime.expiry(data.expires_in_days, now)
        token, calendar, _ = await self._managed(session, scope, token_id, for_update=True)
        if token.revoked_at is not None:
            raise FeedTokenRevoked("A revoked token stays revoked; make a new one.")
        if (
            calendar.district_id is None
            and token.include_subtree
            and not await self._reads_everything(session, scope)
        ):
            raise Forbidden(
                "This feed shows every district's posts; only someone who reads every "
                "district may renew it."
            )
        token.expires_at = expires_at
        token.renewed_by = scope.principal.sub
        token.renewed_at = now
        await session.flush()
        return token_out(token, calendar.district_id, now)

    async def revoke_by_id(self, session: AsyncSession, scope: Scope, token_id: uuid.UUID) -> None:
        """Revoke the token (its creator or a manager of its calendar); again changes
        nothing."""
        token, _, _ = await self._managed(session, scope, token_id, for_update=True)
        if token.revoked_at is None:
            token.revoked_at = func.now()
            await session.flush()

    async def _managed(
        self, session: AsyncSession, scope: Scope, token_id: uuid.UUID, *, for_update: bool
    ) -> tuple[FeedToken, Calendar, str | None]:
        """The token if the caller may manage it: a manager of its calendar's district (the
        central team for the company-wide calendar), or its creator while they still read
        the calendar. Otherwise 404, as for a token that does not exist."""
        found = await repository.token_with_calendar(session, token_id, for_update=for_update)
        if found is not None:
            token, calendar, path = found
            known = calendar.district_id is None or path is not None
            mine = token.created_by == scope.principal.sub and can_read(scope, path)
            if known and (mine or _can_manage(scope, path)):
                return token, calendar, path
        raise FeedTokenNotFound(f"No feed token {token_id}.")

    async def render(
        self, session: AsyncSession, token: str, if_none_match: str | None = None
    ) -> Feed:
        """The feed behind `token` and its entity tag, or only the tag when it matches
        `if_none_match` (the client's copy is current); 404 for an unknown, revoked or expired
        token."""
        if not TOKEN_SHAPE.match(token):
            raise FeedNotFound("No such feed.")
        row = await repository.find_live_token(session, token_hash(token))
        if row is None:
            raise FeedNotFound("No such feed; it may have been revoked or have expired.")
        feed_token, calendar, path = row
        if calendar.district_id is not None and path is None:
            raise FeedNotFound("No such feed.")
        await repository.touch_token(session, feed_token.id, LAST_USED_RESOLUTION)
        now = datetime.now(UTC)
        posts = await self._posts(session, calendar, path, feed_token.include_subtree, now)
        etag = f'W/"{ical.fingerprint(calendar.name, posts)}"'
        if if_none_match is not None and etag_matches(if_none_match, etag):
            return Feed(body=None, etag=etag)
        # Rendering thousands of events takes a second of CPU; keep the event loop serving.
        body = await asyncio.to_thread(ical.render, calendar.name, posts, now=now)
        return Feed(body=body, etag=etag)

    async def _posts(
        self,
        session: AsyncSession,
        calendar: Calendar,
        path: str | None,
        include_subtree: bool,
        now: datetime,
    ) -> list[ical.FeedPost]:
        rows = await repository.list_feed_posts(
            session,
            calendar_id=calendar.id,
            subtree=path,
            include_subtree=include_subtree,
            start=now - FEED_PAST,
            end=now + FEED_AHEAD,
            text_length=ical.MAX_DESCRIPTION_TEXT + 1,
            limit=MAX_FEED_POSTS,
        )
        accounts = await repository.account_labels(session, [r.id for r in rows])
        return [
            ical.FeedPost(
                id=r.id,
                title=r.title,
                text=r.text,
                status=r.status,
                publish_at=r.publish_at,
                timezone=r.timezone,
                accounts=tuple(accounts.get(r.id, ())),
                version=r.version,
                created_at=r.created_at,
                updated_at=r.updated_at,
            )
            for r in rows
        ]


feeds = FeedService()
