"""Every query of blackouts, kept apart from ``service`` so that posts and the style guide can
read blackouts while declaring one can put posts on hold (the service
imports posts; posts import only this module)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.calendar.access import tree
from services.calendar.models import Blackout


async def clashes(session: AsyncSession, path: str | None, at: datetime) -> list[Blackout]:
    """The blackouts that apply to the district at `path` (None: the company-wide calendar,
    where only company-wide blackouts apply) with ``starts_at <= at < ends_at``, earliest
    first. `at` must be timezone-aware."""
    rows = await session.scalars(
        select(Blackout)
        .where(
            tree.applies_to(Blackout.district_id, path),
            Blackout.starts_at <= at,
            Blackout.ends_at > at,
        )
        .order_by(Blackout.starts_at, Blackout.id)
    )
    return list(rows)


async def list_applying(
    session: AsyncSession,
    path: str | None,
    *,
    start: datetime | None,
    end: datetime | None,
    after: tuple[datetime, uuid.UUID] | None,
    fetch: int,
) -> list[Blackout]:
    """The blackouts that apply to the district at `path` and overlap ``[start, end)`` (either
    end open when None), by start and id after the keyset `after`."""
    query = select(Blackout).where(tree.applies_to(Blackout.district_id, path))
    if start is not None:
        query = query.where(Blackout.ends_at > start)
    if end is not None:
        query = query.where(Blackout.starts_at < end)
    if after is not None:
        query = query.where(func.row(Blackout.starts_at, Blackout.id) > func.row(*after))
    query = query.order_by(Blackout.starts_at, Blackout.id).limit(fetch)
    return list(await session.scalars(query))
