"""Every query of the asset library."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.districts import Scope
from services.calendar.access import tree
from services.calendar.models import Asset, PostAsset, districts


@dataclass(frozen=True)
class AssetFilters:
    q: str | None = None
    tags: tuple[str, ...] = ()
    # ltree path of a district: assets of it and of the districts below it.
    under_path: str | None = None
    # ltree path of a district: assets its posts may use (company-wide, it and its ancestors);
    # "" stands for the company-wide calendar (company-wide assets only).
    usable_by_path: str | None = None
    content_type: str | None = None
    rights: str | None = None


async def lock_content(session: AsyncSession, sha256: str) -> None:
    """Serialise, until the transaction ends, everything that stores or removes these bytes:
    an upload that finds the object present must not race a delete that removes it."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"calendar.asset.content:{sha256}"},
    )


async def get_with_path(
    session: AsyncSession, asset_id: uuid.UUID, *, for_update: bool = False
) -> tuple[Asset, str | None] | None:
    """The asset and its district's path (None for a company-wide asset or an unknown
    district)."""
    query = (
        select(Asset, districts.c.path)
        .outerjoin(districts, districts.c.id == Asset.district_id)
        .where(Asset.id == asset_id)
    )
    if for_update:
        query = query.with_for_update(of=Asset)
    row = (await session.execute(query)).first()
    if row is None:
        return None
    return row[0], row[1]


async def find_by_content(
    session: AsyncSession, district_id: str | None, sha256: str
) -> Asset | None:
    district = (
        Asset.district_id.is_(None) if district_id is None else Asset.district_id == district_id
    )
    result: Asset | None = await session.scalar(
        select(Asset).where(district, Asset.sha256 == sha256)
    )
    return result


async def content_still_used(session: AsyncSession, sha256: str) -> bool:
    found = await session.scalar(select(Asset.id).where(Asset.sha256 == sha256).limit(1))
    return found is not None


async def posts_using(session: AsyncSession, asset_id: uuid.UUID) -> int:
    count: int = (
        await session.scalar(
            select(func.count()).select_from(PostAsset).where(PostAsset.asset_id == asset_id)
        )
        or 0
    )
    return count


def _in_subtree(root: str) -> ColumnElement[bool]:
    return Asset.district_id.in_(
        select(districts.c.id).where(
            text("districts.path <@ CAST(:under_path AS ltree)").bindparams(under_path=root)
        )
    )


def _like(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def search(
    session: AsyncSession,
    scope: Scope,
    filters: AssetFilters,
    after: tuple[datetime, uuid.UUID] | None,
    fetch: int,
) -> list[Asset]:
    """Visible assets matching the filters, newest first, `fetch` of them after `after`."""
    query = select(Asset).where(tree.reaching(Asset.district_id, scope))
    if filters.under_path is not None:
        query = query.where(_in_subtree(filters.under_path))
    if filters.usable_by_path is not None:
        query = query.where(tree.applies_to(Asset.district_id, filters.usable_by_path or None))
    if filters.q:
        pattern = _like(filters.q)
        query = query.where(
            or_(
                Asset.title.ilike(pattern, escape="\\"),
                Asset.filename.ilike(pattern, escape="\\"),
            )
        )
    if filters.tags:
        query = query.where(Asset.tags.contains(list(filters.tags)))
    if filters.content_type:
        query = query.where(Asset.content_type.startswith(filters.content_type, autoescape=True))
    if filters.rights == "expired":
        query = query.where(Asset.rights_expire_at <= func.now())
    elif filters.rights == "valid":
        query = query.where(
            or_(Asset.rights_expire_at.is_(None), Asset.rights_expire_at > func.now())
        )
    if after is not None:
        query = query.where(func.row(Asset.created_at, Asset.id) < func.row(*after))
    query = query.order_by(Asset.created_at.desc(), Asset.id.desc()).limit(fetch)
    return list((await session.execute(query)).scalars())


async def usable(
    session: AsyncSession, scope: Scope, post_path: str | None, asset_ids: Sequence[uuid.UUID]
) -> tuple[dict[uuid.UUID, Asset], set[uuid.UUID]]:
    """Of `asset_ids`, the visible assets a post of the district at `post_path` may use, and
    the ids of those visible to the caller whatever the district. The rows stay locked
    against deletion (FOR KEY SHARE) until the transaction ends, so the post can refer to
    them; a delete that committed first leaves nothing to find."""
    rows = (
        await session.execute(
            select(Asset, tree.applies_to(Asset.district_id, post_path))
            .where(Asset.id.in_(list(asset_ids)), tree.reaching(Asset.district_id, scope))
            .with_for_update(read=True, key_share=True, of=Asset)
        )
    ).all()
    return {asset.id: asset for asset, applies in rows if applies}, {asset.id for asset, _ in rows}


async def expired_by_post(
    session: AsyncSession, post_ids: Sequence[uuid.UUID]
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    rows = await session.execute(
        select(PostAsset.post_id, PostAsset.asset_id)
        .join(Asset, Asset.id == PostAsset.asset_id)
        .where(PostAsset.post_id.in_(list(post_ids)), Asset.rights_expire_at <= func.now())
        .order_by(PostAsset.post_id, PostAsset.asset_id)
    )
    return [(post_id, asset_id) for post_id, asset_id in rows]


async def rights_ending_for_post(
    session: AsyncSession, post_id: uuid.UUID, at: datetime
) -> list[Asset]:
    """The assets the post uses whose usage rights end at or before `at`, by id."""
    rows = await session.scalars(
        select(Asset)
        .join(PostAsset, PostAsset.asset_id == Asset.id)
        .where(PostAsset.post_id == post_id, Asset.rights_expire_at <= at)
        .order_by(Asset.id)
    )
    return list(rows)
