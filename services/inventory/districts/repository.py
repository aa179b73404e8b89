"""Every query of the districts module. Paths are ``ltree`` values; a move rewrites the path
of every district below the one that moves, in one statement."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.inventory.models import District
from services.inventory.repository import in_districts


async def find(session: AsyncSession, district_id: str) -> District | None:
    return await session.get(District, district_id)


async def find_paths(session: AsyncSession, district_ids: Sequence[str]) -> list[str]:
    """The paths of these districts (unknown ids are left out)."""
    if not district_ids:
        return []
    rows = await session.scalars(select(District.path).where(District.id.in_(list(district_ids))))
    return list(rows)


async def lock_subtree(session: AsyncSession, path: str) -> None:
    """Lock the district at `path` and everything below it, so a concurrent move cannot
    interleave."""
    await session.execute(
        select(District.id).where(text("path <@ CAST(:p AS ltree)")).with_for_update(),
        {"p": path},
    )


async def move_subtree(
    session: AsyncSession, district_id: str, parent_id: str, old_path: str, new_path: str
) -> None:
    """Re-root the subtree at `old_path` under `new_path` and link the district to its new
    parent."""
    await session.execute(
        update(District)
        .where(text("path <@ CAST(:old AS ltree)"))
        .values(
            path=text(
                "CASE WHEN path = CAST(:old AS ltree) THEN CAST(:new AS ltree)"
                " ELSE CAST(:new AS ltree) || subpath(path, nlevel(CAST(:old AS ltree))) END"
            ),
            updated_at=func.now(),
        )
        .execution_options(synchronize_session=False),
        {"old": old_path, "new": new_path},
    )
    await session.execute(
        update(District).where(District.id == district_id).values(parent_id=parent_id)
    )


async def list_in_tree_order(
    session: AsyncSession,
    read_paths: Sequence[str],
    *,
    under: str | None,
    after: str | None,
    limit: int,
) -> list[District]:
    """Districts within `read_paths` (and below `under`), in path order after `after`."""
    query = in_districts(select(District), read_paths, under)
    if after is not None:
        query = query.where(text("districts.path > CAST(:after AS ltree)").bindparams(after=after))
    query = query.order_by(District.path).limit(limit)
    return list((await session.execute(query)).scalars())
