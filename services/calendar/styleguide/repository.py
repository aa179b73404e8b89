"""Every query of the style guide: rules, and what lint reads of posts, targets and assets."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.calendar.access import district_ids_under, tree
from services.calendar.models import Account, Asset, Post, PostTarget, StyleRule

# Posts that will not go out do not crowd anyone.
INACTIVE_STATUSES = ("cancelled", "rejected")


async def rules_applying(
    session: AsyncSession,
    path: str | None,
    *,
    enabled_only: bool,
    kind: str | None = None,
    after: tuple[datetime, uuid.UUID] | None = None,
    limit: int | None = None,
) -> list[StyleRule]:
    """Rules that apply to the district at `path` (company-wide, its ancestors' and its own;
    company-wide only for None), oldest first."""
    query = select(StyleRule).where(tree.applies_to(StyleRule.district_id, path))
    if enabled_only:
        query = query.where(StyleRule.enabled)
    if kind is not None:
        query = query.where(StyleRule.kind == kind)
    if after is not None:
        query = query.where(func.row(StyleRule.created_at, StyleRule.id) > func.row(*after))
    query = query.order_by(StyleRule.created_at, StyleRule.id)
    if limit is not None:
        query = query.limit(limit)
    return list(await session.scalars(query))


async def lock_rule_identity(session: AsyncSession, key: int) -> None:
    """Hold, until the transaction ends, the lock of one rule identity (``identity_lock_key``):
    two writers of the same rule take turns, so the second sees the first's row."""
    await session.execute(select(func.pg_advisory_xact_lock(key)))


async def find_identical_rule(
    session: AsyncSession,
    *,
    district_id: str | None,
    kind: str,
    platform: str | None,
    params: dict[str, Any],
    other_than: uuid.UUID | None = None,
) -> uuid.UUID | None:
    """The id of a rule with the same district, kind, platform and params (compared as JSON
    values, so key order does not matter), other than `other_than`."""
    query = select(StyleRule.id).where(
        StyleRule.district_id.is_not_distinct_from(district_id),
        StyleRule.kind == kind,
        StyleRule.platform.is_not_distinct_from(platform),
        StyleRule.params == params,
    )
    if other_than is not None:
        query = query.where(StyleRule.id != other_than)
    return await session.scalar(query.order_by(StyleRule.created_at, StyleRule.id).limit(1))


async def images(
    session: AsyncSession, asset_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, str | None]:
    """The image assets among `asset_ids`, with the library's alt text of each."""
    if not asset_ids:
        return {}
    rows = await session.execute(
        select(Asset.id, Asset.alt_text).where(
            Asset.id.in_(list(set(asset_ids))), Asset.content_type.startswith("image/")
        )
    )
    return {asset_id: alt_text for asset_id, alt_text in rows}


@dataclass(frozen=True)
class RightsEnd:
    """An asset whose usage rights end, as lint reports it."""

    asset_id: uuid.UUID
    title: str
    rights_expire_at: datetime


async def rights_ending(
    session: AsyncSession, asset_ids: Sequence[uuid.UUID], path: str | None, at: datetime
) -> dict[uuid.UUID, RightsEnd]:
    """Of `asset_ids`, the assets a post of the district at `path` may use (company-wide, the
    district's and its ancestors': no other district's asset is described) whose usage
    rights end at or before `at`."""
    if not asset_ids:
        return {}
    rows = await session.execute(
        select(Asset.id, Asset.title, Asset.rights_expire_at).where(
            Asset.id.in_(list(set(asset_ids))),
            tree.applies_to(Asset.district_id, path),
            Asset.rights_expire_at <= at,
        )
    )
    # rights_expire_at <= at holds only where it is set.
    return {a: RightsEnd(a, title, expires) for a, title, expires in rows if expires is not None}


@dataclass(frozen=True)
class Neighbour:
    """Another post going out on one of the accounts near the time linted."""

    account_id: uuid.UUID
    platform: str
    handle: str | None
    publish_at: datetime


async def neighbours(
    session: AsyncSession,
    account_ids: Sequence[uuid.UUID],
    at: datetime,
    window: timedelta,
    exclude_post: uuid.UUID | None,
) -> list[Neighbour]:
    """Targets of other live posts on these accounts with publish_at strictly within
    `window` of `at` (one range scan of ix_post_targets_account per account)."""
    if not account_ids:
        return []
    query = (
        select(PostTarget.account_id, PostTarget.platform, Account.handle, PostTarget.publish_at)
        .join(Post, Post.id == PostTarget.post_id)
        .join(Account, Account.id == PostTarget.account_id, isouter=True)
        .where(
            PostTarget.account_id.in_(list(set(account_ids))),
            PostTarget.publish_at > at - window,
            PostTarget.publish_at < at + window,
            Post.status.not_in(INACTIVE_STATUSES),
        )
        .order_by(PostTarget.publish_at, PostTarget.post_id)
    )
    if exclude_post is not None:
        query = query.where(PostTarget.post_id != exclude_post)
    rows = await session.execute(query)
    return [
        Neighbour(account_id=a, platform=p, handle=h, publish_at=t)
        for a, p, h, t in rows
        if t is not None
    ]


async def accounts_outside(
    session: AsyncSession,
    account_ids: Sequence[uuid.UUID],
    path: str | None,
    read_paths: Sequence[str],
) -> list[uuid.UUID]:
    """The ids among `account_ids` that are not accounts of a district the caller reads and,
    for a district's post, in that district or below it."""
    if not account_ids:
        return []
    query = select(Account.id).where(
        Account.id.in_(list(account_ids)),
        Account.district_id.in_(district_ids_under(read_paths)),
    )
    if path is not None:
        query = query.where(tree.in_subtree(Account.district_id, path))
    known = set(await session.scalars(query))
    return [a for a in account_ids if a not in known]
