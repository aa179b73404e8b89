"""Every query of posts: the post, its targets, its assets and its history."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.calendar.access import tree
from services.calendar.models import (
    Account,
    Asset,
    Campaign,
    Post,
    PostApproval,
    PostAsset,
    PostHistory,
    PostTarget,
)

# Post ------------------------------------------------------------------------------------


async def find_post(
    session: AsyncSession, post_id: uuid.UUID, *, lock: bool = False
) -> Post | None:
    """The post; locked FOR UPDATE with `lock`."""
    query = select(Post).where(Post.id == post_id)
    if lock:
        query = query.with_for_update()
    return await session.scalar(query)


async def find_approval(session: AsyncSession, post_id: uuid.UUID) -> PostApproval | None:
    """The approval request the post's latest submission opened, as far as calendar knows."""
    return await session.get(PostApproval, post_id)


async def delete_approval(session: AsyncSession, post_id: uuid.UUID) -> None:
    """Forget the post's approval request (a new submission opens another)."""
    await session.execute(delete(PostApproval).where(PostApproval.post_id == post_id))


async def lock_scheduled_between(
    session: AsyncSession, start: datetime, end: datetime, subtree: str | None
) -> list[Post]:
    """The scheduled posts publishing in ``[start, end)`` in the district at path `subtree` and
    below (None: every post), locked FOR UPDATE in id order (two holds never deadlock)."""
    which: ColumnElement[bool] = (
        true() if subtree is None else tree.in_subtree(Post.district_id, subtree)
    )
    rows = await session.scalars(
        select(Post)
        .where(
            Post.status == "scheduled",
            Post.publish_at >= start,
            Post.publish_at < end,
            which,
        )
        .order_by(Post.id)
        .with_for_update()
    )
    return list(rows)


async def lock_scheduled_using_asset(
    session: AsyncSession, asset_id: uuid.UUID, publishing_from: datetime
) -> list[Post]:
    """The scheduled posts using the asset that publish at or after `publishing_from`, locked
    FOR UPDATE in id order."""
    rows = await session.scalars(
        select(Post)
        .join(PostAsset, PostAsset.post_id == Post.id)
        .where(
            PostAsset.asset_id == asset_id,
            Post.status == "scheduled",
            Post.publish_at >= publishing_from,
        )
        .order_by(Post.id)
        .with_for_update(of=Post)
    )
    return list(rows)


# Targets ---------------------------------------------------------------------------------


async def list_target_ids(session: AsyncSession, post_id: uuid.UUID) -> list[uuid.UUID]:
    return list(
        await session.scalars(select(PostTarget.account_id).where(PostTarget.post_id == post_id))
    )


async def list_target_platforms(
    session: AsyncSession, post_id: uuid.UUID
) -> list[tuple[uuid.UUID, str]]:
    """The post's target accounts, each with its platform."""
    rows = await session.execute(
        select(PostTarget.account_id, PostTarget.platform).where(PostTarget.post_id == post_id)
    )
    return [(account_id, platform) for account_id, platform in rows]


async def list_targets_with_accounts(
    session: AsyncSession, post_id: uuid.UUID
) -> list[tuple[PostTarget, Account | None]]:
    """The post's targets by platform and account, each with its account from the read
    model (None when it lacks it)."""
    rows = await session.execute(
        select(PostTarget, Account)
        .join(Account, Account.id == PostTarget.account_id, isouter=True)
        .where(PostTarget.post_id == post_id)
        .order_by(PostTarget.platform, PostTarget.account_id)
    )
    return [(target, account) for target, account in rows]


async def list_target_statuses(
    session: AsyncSession, post_id: uuid.UUID
) -> list[tuple[uuid.UUID, str | None, str | None]]:
    """The post's target accounts with their status and handle (both None when the read
    model lacks the account)."""
    rows = await session.execute(
        select(PostTarget.account_id, Account.status, Account.handle)
        .join(Account, Account.id == PostTarget.account_id, isouter=True)
        .where(PostTarget.post_id == post_id)
    )
    return [(account_id, status, handle) for account_id, status, handle in rows]


async def add_targets(session: AsyncSession, post: Post, accounts: Sequence[Account]) -> None:
    if accounts:
        await session.execute(
            insert(PostTarget),
            [
                {
                    "post_id": post.id,
                    "account_id": a.id,
                    "platform": a.platform,
                    "publish_at": post.publish_at,
                }
                for a in accounts
            ],
        )


async def delete_targets(session: AsyncSession, post_id: uuid.UUID) -> None:
    await session.execute(delete(PostTarget).where(PostTarget.post_id == post_id))


async def move_targets(
    session: AsyncSession, post_id: uuid.UUID, publish_at: datetime | None
) -> None:
    """Keep the targets' copy of the post's publish time in step (the range view's account
    filter reads it)."""
    await session.execute(
        update(PostTarget).where(PostTarget.post_id == post_id).values(publish_at=publish_at)
    )


async def lock_target(
    session: AsyncSession, post_id: uuid.UUID, account_id: uuid.UUID
) -> PostTarget | None:
    return await session.get(PostTarget, (post_id, account_id), with_for_update=True)


async def count_unpublished_targets(session: AsyncSession, post_id: uuid.UUID) -> int:
    pending = await session.scalar(
        select(func.count())
        .select_from(PostTarget)
        .where(PostTarget.post_id == post_id, PostTarget.publication_status != "published")
    )
    return pending or 0


# Assets, campaigns, history --------------------------------------------------------------


async def add_assets(
    session: AsyncSession, post_id: uuid.UUID, asset_ids: Sequence[uuid.UUID]
) -> None:
    if asset_ids:
        await session.execute(
            insert(PostAsset), [{"post_id": post_id, "asset_id": a} for a in asset_ids]
        )


async def delete_assets(session: AsyncSession, post_id: uuid.UUID) -> None:
    await session.execute(delete(PostAsset).where(PostAsset.post_id == post_id))


async def find_assets(
    session: AsyncSession, asset_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Asset]:
    return {a.id: a for a in await session.scalars(select(Asset).where(Asset.id.in_(asset_ids)))}


async def find_campaign_tags(session: AsyncSession, campaign_id: uuid.UUID) -> list[str]:
    tags = await session.scalar(select(Campaign.tags).where(Campaign.id == campaign_id))
    return list(tags or [])


async def add_history(session: AsyncSession, **values: Any) -> None:
    await session.execute(insert(PostHistory).values(**values))


async def add_history_many(session: AsyncSession, rows: Iterable[dict[str, Any]]) -> None:
    await session.execute(insert(PostHistory), list(rows))


async def list_history(
    session: AsyncSession, post_id: uuid.UUID, *, after: int, limit: int
) -> list[PostHistory]:
    """The post's history entries after the id `after`, oldest first."""
    rows = await session.scalars(
        select(PostHistory)
        .where(PostHistory.post_id == post_id, PostHistory.id > after)
        .order_by(PostHistory.id)
        .limit(limit)
    )
    return list(rows)
