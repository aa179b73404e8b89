"""Every query of blackouts that other modules ask: kept apart from ``service`` so posts and
the style guide can read blackouts while declaring one can put posts on hold (the service
imports posts; posts import only this module)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.calendar.access import applies_to
from services.calendar.models import Blackout


async def clashes(session: AsyncSession, path: str | None, at: datetime) -> list[Blackout]:
    """The blackouts that apply to the district at `path` (None: the company-wide calendar,
    where only company-wide blackouts apply) with ``starts_at <= at < ends_at``, earliest
    first. `at` must be timezone-aware."""
    rows = await session.scalars(
        select(Blackout)
        .where(
            applies_to(Blackout.district_id, path),
            Blackout.starts_at <= at,
            Blackout.ends_at > at,
        )
        .order_by(Blackout.starts_at, Blackout.id)
    )
    return list(rows)
