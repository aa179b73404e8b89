"""Queries of the district replica that several modules of the service share (the chassis's
``DistrictTree`` answers scopes, paths and visibility filters; these are what it does not)."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import TextClause, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.approvals.models import districts


def _under(paths: Sequence[str]) -> TextClause:
    return text("districts.path <@ CAST(:under_paths AS ltree[])").bindparams(
        under_paths=list(paths)
    )


async def list_district_ids_under(session: AsyncSession, paths: Sequence[str]) -> list[str]:
    """The ids of the districts at `paths` or below them."""
    if not paths:
        return []
    rows = await session.scalars(select(districts.c.id).where(_under(paths)))
    return [str(district_id) for district_id in rows]


async def any_district_under(
    session: AsyncSession, district_ids: Collection[str], paths: Sequence[str]
) -> bool:
    """One of `district_ids` lies at `paths` or below them."""
    if not district_ids or not paths:
        return False
    found = await session.scalar(
        select(districts.c.id).where(districts.c.id.in_(list(district_ids)), _under(paths)).limit(1)
    )
    return found is not None


async def list_root_district_ids(session: AsyncSession, limit: int) -> list[str]:
    """Up to `limit` ids of the top districts of the tree."""
    rows = await session.scalars(
        select(districts.c.id).where(text("nlevel(districts.path) = 1")).limit(limit)
    )
    return [str(district_id) for district_id in rows]
