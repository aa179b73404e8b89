"""Every query of the views: the summary columns of a range's posts, walked along the
``(publish_at, id)`` index, those of the backlog (no publication time) by creation, and their
target accounts in one more query."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, Text, any_, literal, or_, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.pagination import keyset_slice
from services.calendar.access import district_ids_under
from services.calendar.models import Post, PostTarget
from services.calendar.views.schemas import RangeFilters

SUMMARY_COLUMNS = (
    Post.id,
    Post.calendar_id,
    Post.district_id,
    Post.title,
    Post.status,
    Post.publish_at,
    Post.timezone,
    Post.campaign_id,
    Post.author,
    Post.assignee,
    Post.due_at,
    Post.version,
)


@dataclass(frozen=True)
class RangeQuery:
    """What the range's posts are filtered by, every id already checked as visible: the
    caller's `filters`, whose district is resolved to `district_ids` (with the company-wide
    calendar's posts when `include_company`)."""

    start: datetime
    end: datetime
    district_ids: Sequence[str]
    include_company: bool
    filters: RangeFilters


async def list_district_ids(session: AsyncSession, roots: Sequence[str]) -> list[str]:
    """The ids of the districts at or below any of `roots` (ltree paths)."""
    return list(await session.scalars(district_ids_under(roots)))


def _any_of(column: Any, values: Sequence[str]) -> ColumnElement[bool]:
    # One array parameter, not one per value: the same statement whatever the count.
    clause: ColumnElement[bool] = column == any_(literal(list(values), ARRAY(Text)))
    return clause


def _matching(
    query: Any, district_ids: Sequence[str], include_company: bool, filters: RangeFilters
) -> Any:
    """`query` of posts narrowed to the districts and to the caller's filters, but for the
    accounts (each list reads post_targets its own way)."""
    where_district = _any_of(Post.district_id, district_ids)
    if include_company:
        where_district = or_(Post.district_id.is_(None), where_district)
    query = query.where(where_district)
    if filters.calendar_id is not None:
        query = query.where(Post.calendar_id == filters.calendar_id)
    if filters.campaign_id is not None:
        query = query.where(Post.campaign_id == filters.campaign_id)
    if filters.statuses:
        query = query.where(Post.status.in_(list(filters.statuses)))
    if filters.assignee is not None:
        query = query.where(Post.assignee == filters.assignee)
    return query


async def list_range_summaries(
    session: AsyncSession,
    where: RangeQuery,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    fetch: int,
) -> Sequence[Row[Any]]:
    """The summary columns of the posts publishing in ``[where.start, where.end)`` that match
    `where`, by (publish_at, id) after the keyset `after`."""
    query = select(*SUMMARY_COLUMNS).where(
        Post.publish_at >= where.start, Post.publish_at < where.end
    )
    query = _matching(query, where.district_ids, where.include_company, where.filters)
    filters = where.filters
    if filters.account_ids:
        # post_targets keeps the post's publish_at (the posts module keeps it in step), so
        # the account's index range finds the month's posts without visiting the others.
        query = query.where(
            Post.id.in_(
                select(PostTarget.post_id).where(
                    PostTarget.account_id.in_(list(filters.account_ids)),
                    PostTarget.publish_at >= where.start,
                    PostTarget.publish_at < where.end,
                )
            )
        )
    query = keyset_slice(query, (Post.publish_at, Post.id), after=after, limit=fetch)
    rows: Sequence[Row[Any]] = (await session.execute(query)).all()  # type: ignore[assignment]
    return rows


async def list_backlog_summaries(
    session: AsyncSession,
    district_ids: Sequence[str],
    include_company: bool,
    filters: RangeFilters,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    fetch: int,
) -> Sequence[Row[Any]]:
    """The summary columns (and creation time) of the posts without a publication time that
    match, by (created_at, id) after the keyset `after`."""
    query = select(*SUMMARY_COLUMNS, Post.created_at).where(Post.publish_at.is_(None))
    query = _matching(query, district_ids, include_company, filters)
    if filters.account_ids:
        query = query.where(
            Post.id.in_(
                select(PostTarget.post_id).where(
                    PostTarget.account_id.in_(list(filters.account_ids))
                )
            )
        )
    query = keyset_slice(query, (Post.created_at, Post.id), after=after, limit=fetch)
    rows: Sequence[Row[Any]] = (await session.execute(query)).all()  # type: ignore[assignment]
    return rows


async def targets_of(
    session: AsyncSession, post_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """The target accounts of each post, by account id."""
    if not post_ids:
        return {}
    rows = await session.execute(
        select(PostTarget.post_id, PostTarget.account_id)
        .where(PostTarget.post_id.in_(list(post_ids)))
        .order_by(PostTarget.post_id, PostTarget.account_id)
    )
    found: dict[uuid.UUID, list[uuid.UUID]] = {}
    for post_id, account_id in rows:
        found.setdefault(post_id, []).append(account_id)
    return found
