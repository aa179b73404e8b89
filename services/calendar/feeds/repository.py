"""The queries of feed tokens that managers and the id-addressed routes ask."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, false, func, or_, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.calendar.feeds.schemas import FeedTokenFilter
from services.calendar.models import Calendar, FeedToken, districts


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
    limit: int,
) -> list[tuple[FeedToken, str | None]]:
    """Tokens of the calendars of the districts at or below `roots` (ltree paths), and of the
    company-wide calendar when `company`, newest first; each with its calendar's district."""
    calendars: list[ColumnElement[bool]] = []
    if roots:
        calendars.append(
            Calendar.district_id.in_(
                select(districts.c.id).where(
                    text("districts.path <@ CAST(:token_roots AS ltree[])").bindparams(
                        token_roots=list(roots)
                    )
                )
            )
        )
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
    if created_by is not None:
        query = query.where(FeedToken.created_by == created_by)
    if after is not None:
        query = query.where(tuple_(FeedToken.created_at, FeedToken.id) < tuple_(*after))
    query = query.order_by(FeedToken.created_at.desc(), FeedToken.id.desc()).limit(limit)
    return [(token, district_id) for token, district_id in (await session.execute(query)).all()]
