"""Every query of the asset library."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.districts import Scope
from services.calendar.access import tree
from services.calendar.assets.schemas import AssetSearch
from services.calendar.models import Asset, PostAsset


async def lock_content(session: AsyncSession, sha256: str) -> None:
    """Serialise, until the transaction ends, everything that stores or removes these bytes:
    an upload that finds the object present must not race a delete that removes it."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"calendar.asset.content:{sha256}"},
    )


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


def _like(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def search(
    session: AsyncSession,
    scope: Scope,
    search: AssetSearch,
    *,
    under_path: str | None,
    usable_by_path: str | None,
    after: tuple[datetime, uuid.UUID] | None,
    fetch: int,
) -> list[Asset]:
    """Visible assets matching `search`, whose districts are given as the ltree paths
    `under_path` (assets of it and below) and `usable_by_path` (assets its posts may use:
    company-wide, it and its ancestors), newest first, `fetch` of them after `after`."""
    query = select(Asset).where(tree.reaching(Asset.district_id, scope))
    if under_path is not None:
        query = query.where(tree.in_subtree(Asset.district_id, under_path))
    if usable_by_path is not None:
        query = query.where(tree.applies_to(Asset.district_id, usable_by_path))
    if search.q:
        pattern = _like(search.q)
        query = query.where(
            or_(
                Asset.title.ilike(pattern, escape="\\"),
                Asset.filename.ilike(pattern, escape="\\"),
            )
        )
    if search.tags:
        query = query.where(Asset.tags.contains(list(search.tags)))
    if search.content_type_prefix:
        query = query.where(
            Asset.content_type.startswith(search.content_type_prefix, autoescape=True)
        )
    if search.rights == "expired":
        query = query.where(Asset.rights_expire_at <= func.now())
    elif search.rights == "valid":
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
