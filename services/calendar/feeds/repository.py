"""Every query of feeds: their tokens and the posts a feed shows."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    any_,
    false,
    func,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.pagination import keyset_slice
from services.calendar.access import district_ids_under, tree
from services.calendar.feeds.schemas import FeedTokenFilter
from services.calendar.models import Account, Calendar, FeedToken, Post, PostTarget, districts

SelectT = TypeVar("SelectT", bound="Select[*tuple[Any, ...]]")


async def token_with_calendar(
    session: AsyncSession, token_id: uuid.UUID, *, for_update: bool = False
) -> tuple[FeedToken, Calendar, str | None] | None:
    """The token, its calendar and the calendar's district path (None: company-wide, or a
    district the replica does not know; the caller tells them apart by the calendar)."""
    query = (
        select(FeedToken, Calendar, districts.c.path)
        .join(Calendar, Calendar.id == FeedToken.calendar_id)
        .outerjoin(districts, districts.c.id == Calendar.district_id)
        .where(FeedToken.id == token_id)
    )
    if for_update:
        query = query.with_for_update(of=FeedToken)
    row = (await session.execute(query)).first()
    if row is None:
        return None
    token, calendar, path = row
    return token, calendar, None if path is None else str(path)


def _newest_first(
    query: SelectT,
    *,
    created_by: str | None,
    after: tuple[datetime, uuid.UUID] | None,
    fetch: int,
) -> SelectT:
    """`query` of tokens, only `created_by`'s when given, newest first: `fetch` of them after
    the keyset `after`."""
    if created_by is not None:
        query = query.where(FeedToken.created_by == created_by)
    return keyset_slice(
        query, (FeedToken.created_at, FeedToken.id), after=after, limit=fetch, descending=True
    )


def status_filter(which: FeedTokenFilter) -> ColumnElement[bool] | None:
    now = func.now()
    match which:
        case FeedTokenFilter.ACTIVE:
            return FeedToken.revoked_at.is_(None) & (FeedToken.expires_at > now)
        case FeedTokenFilter.EXPIRED:
            return FeedToken.revoked_at.is_(None) & (FeedToken.expires_at <= now)
        case FeedTokenFilter.REVOKED:
            return FeedToken.revoked_at.is_not(None)
    return None


async def managed_tokens(
    session: AsyncSession,
    *,
    roots: Sequence[str],
    company: bool,
    which: FeedTokenFilter,
    created_by: str | None,
    after: tuple[datetime, uuid.UUID] | None,
    fetch: int,
) -> list[tuple[FeedToken, str | None]]:
    """Tokens of the calendars of the districts at or below `roots` (ltree paths), and of the
    company-wide calendar when `company`, newest first; each with its calendar's district."""
    calendars: list[ColumnElement[bool]] = []
    if roots:
        calendars.append(Calendar.district_id.in_(district_ids_under(roots)))
    if company:
        calendars.append(Calendar.district_id.is_(None))
    query = (
        select(FeedToken, Calendar.district_id)
        .join(Calendar, Calendar.id == FeedToken.calendar_id)
        .where(or_(*calendars) if calendars else false())
    )
    condition = status_filter(which)
    if condition is not None:
        query = query.where(condition)
    query = _newest_first(query, created_by=created_by, after=after, fetch=fetch)
    return [(token, district_id) for token, district_id in (await session.execute(query)).all()]


async def count_active_tokens(session: AsyncSession, calendar_id: uuid.UUID, creator: str) -> int:
    """How many of `creator`'s tokens on the calendar are neither revoked nor expired."""
    active = await session.scalar(
        select(func.count()).where(
            FeedToken.calendar_id == calendar_id,
            FeedToken.created_by == creator,
            FeedToken.revoked_at.is_(None),
            FeedToken.expires_at > func.now(),
        )
    )
    return active or 0


async def list_root_paths(session: AsyncSession) -> list[str]:
    """The paths of the top-level districts of the replica."""
    rows = await session.execute(select(districts.c.path).where(districts.c.parent_id.is_(None)))
    return [str(path) for path in rows.scalars()]


async def list_calendar_tokens(
    session: AsyncSession,
    calendar_id: uuid.UUID,
    *,
    created_by: str | None,
    include_revoked: bool,
    after: tuple[datetime, uuid.UUID] | None,
    fetch: int,
) -> list[FeedToken]:
    """The calendar's tokens, newest first after the keyset `after`: only `created_by`'s when
    given, the revoked ones only when `include_revoked`."""
    query = select(FeedToken).where(FeedToken.calendar_id == calendar_id)
    if not include_revoked:
        query = query.where(FeedToken.revoked_at.is_(None))
    query = _newest_first(query, created_by=created_by, after=after, fetch=fetch)
    return list((await session.execute(query)).scalars())


async def lock_calendar_token(
    session: AsyncSession, calendar_id: uuid.UUID, token_id: uuid.UUID
) -> FeedToken | None:
    """The calendar's token, locked for update; None when the calendar has no such token."""
    return (
        await session.execute(
            select(FeedToken)
            .where(FeedToken.id == token_id, FeedToken.calendar_id == calendar_id)
            .with_for_update()
        )
    ).scalar_one_or_none()


async def find_live_token(
    session: AsyncSession, token_hash: bytes
) -> tuple[FeedToken, Calendar, str | None] | None:
    """The token with that hash, neither revoked nor expired (an expired token answers
    exactly as a revoked one), with its calendar and the calendar's district path."""
    row = (
        await session.execute(
            select(FeedToken, Calendar, districts.c.path)
            .join(Calendar, Calendar.id == FeedToken.calendar_id)
            .outerjoin(districts, districts.c.id == Calendar.district_id)
            .where(
                FeedToken.token_hash == token_hash,
                FeedToken.revoked_at.is_(None),
                FeedToken.expires_at > func.now(),
            )
        )
    ).first()
    if row is None:
        return None
    token, calendar, path = row
    return token, calendar, None if path is None else str(path)


async def touch_token(session: AsyncSession, token_id: uuid.UUID, resolution: timedelta) -> None:
    """Record that the token was used now, unless it was within the last `resolution`."""
    await session.execute(
        update(FeedToken)
        .where(
            FeedToken.id == token_id,
            or_(
                FeedToken.last_used_at.is_(None),
                FeedToken.last_used_at < func.now() - resolution,
            ),
        )
        .values(last_used_at=func.now())
        .execution_options(synchronize_session=False)
    )


async def list_feed_posts(
    session: AsyncSession,
    *,
    calendar_id: uuid.UUID,
    subtree: str | None,
    include_subtree: bool,
    start: datetime,
    end: datetime,
    text_length: int,
    limit: int,
) -> Sequence[Row[Any]]:
    """What a feed shows of the posts publishing in ``[start, end)``, earliest first: those of
    the calendar, or with `include_subtree` those of the district at path `subtree` and below
    it (every post when `subtree` is None). A post's text is cut to `text_length`."""
    which: ColumnElement[bool]
    if not include_subtree:
        which = Post.calendar_id == calendar_id
    elif subtree is None:
        which = true()  # the company-wide calendar's subtree is every district
    else:
        which = tree.in_subtree(Post.district_id, subtree)
    rows: Sequence[Row[Any]] = (
        await session.execute(
            select(
                Post.id,
                Post.title,
                # Only what the event shows: a post's text may be 20,000 characters.
                func.left(Post.text, text_length).label("text"),
                Post.status,
                Post.publish_at,
                Post.timezone,
                Post.version,
                Post.created_at,
                Post.updated_at,
            )
            .where(which, Post.publish_at >= start, Post.publish_at < end)
            .order_by(Post.publish_at, Post.id)
            .limit(limit)
        )
    ).all()
    return rows


async def account_labels(
    session: AsyncSession, post_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[str]]:
    """Per post, its accounts as "platform @handle" (the id if the read model lacks it)."""
    if not post_ids:
        return {}
    rows = await session.execute(
        select(PostTarget.post_id, PostTarget.account_id, Account.platform, Account.handle)
        .outerjoin(Account, Account.id == PostTarget.account_id)
        # One array parameter: thousands of bound parameters cost more than the query.
        .where(PostTarget.post_id == any_(literal(post_ids, ARRAY(UUID(as_uuid=True)))))
        .order_by(PostTarget.post_id, Account.platform, Account.handle)
    )
    found: dict[uuid.UUID, list[str]] = {}
    for post_id, account_id, platform, handle in rows:
        label = f"{platform} @{handle}" if handle is not None else str(account_id)
        found.setdefault(post_id, []).append(label)
    return found
