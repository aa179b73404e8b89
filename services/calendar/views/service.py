"""The range view: the posts of a time range, as a calendar's month or week view asks.

It is the hottest read of the service (every calendar screen), so it reads only the summary
columns, walks the ``(publish_at, id)`` index in order with keyset pagination and stops at the
page's end, and fetches the page's target accounts in one more query. Posts without a
publication time are not on any range: they are drafts still waiting for a slot.

What the caller sees: posts of the districts they read and the company-wide calendar's posts.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Text, any_, literal, or_, select, text, tuple_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.errors import Unprocessable
from chassis.pagination import PageRequest, cursor_key
from services.calendar.access import Scope, district_path
from services.calendar.calendars.service import campaigns, get_visible
from services.calendar.models import Post, PostTarget, districts
from services.calendar.views.schemas import PostSummary

MAX_RANGE = timedelta(days=400)


class InvalidRange(Unprocessable):
    type_slug = "invalid-range"
    title = "The time range is not valid"


@dataclass(frozen=True)
class RangeFilters:
    district_id: str | None = None
    calendar_id: uuid.UUID | None = None
    account_ids: Sequence[uuid.UUID] = field(default_factory=tuple)
    campaign_id: uuid.UUID | None = None
    statuses: Sequence[str] = field(default_factory=tuple)
    assignee: str | None = None


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


def check_range(start: datetime, end: datetime) -> None:
    if end <= start:
        raise InvalidRange("`to` must be after `from`.")
    if end - start > MAX_RANGE:
        raise InvalidRange(
            f"A range spans at most {MAX_RANGE.days} days; page through longer ones.",
            max_days=MAX_RANGE.days,
        )


def in_subtree(district_column: Any, path: str) -> ColumnElement[bool]:
    """SQL: rows of the district at `path` or below it."""
    return district_column.in_(  # type: ignore[no-any-return]
        select(districts.c.id).where(
            text("districts.path <@ CAST(:subtree_root AS ltree)").bindparams(subtree_root=path)
        )
    )


async def district_ids(session: AsyncSession, roots: Sequence[str]) -> list[str]:
    """The ids of the districts at or below any of `roots` (ltree paths)."""
    rows = await session.execute(
        select(districts.c.id).where(
            text("districts.path <@ CAST(:roots AS ltree[])").bindparams(roots=list(roots))
        )
    )
    return list(rows.scalars())


def _any_of(column: Any, values: list[str]) -> ColumnElement[bool]:
    # One array parameter, not one per value: the same statement whatever the count.
    clause: ColumnElement[bool] = column == any_(literal(values, ARRAY(Text)))
    return clause


class RangeView:
    async def posts(
        self,
        session: AsyncSession,
        scope: Scope,
        start: datetime,
        end: datetime,
        filters: RangeFilters,
        page: PageRequest,
    ) -> tuple[list[PostSummary], list[Any] | None]:
        """Visible posts publishing in [start, end), by (publish_at, id), and the next page's
        cursor (None on the last page)."""
        check_range(start, end)
        if not scope.read_paths:
            return [], None
        # Each id filter names an object the caller must be able to see (404 otherwise), as
        # every endpoint taking an id does.
        if filters.district_id is not None:
            path = await district_path(session, scope, filters.district_id)
            # The district is readable, so everything below it is too.
            where_district = _any_of(Post.district_id, await district_ids(session, [path]))
        else:
            # What access.visible says, with the districts resolved first: given the ids, the
            # planner knows how few posts a small district has and reads them through the
            # district index instead of walking the whole month.
            where_district = or_(
                Post.district_id.is_(None),
                _any_of(Post.district_id, await district_ids(session, scope.read_paths)),
            )
        query = select(*SUMMARY_COLUMNS).where(
            Post.publish_at >= start, Post.publish_at < end, where_district
        )
        if filters.calendar_id is not None:
            await get_visible(session, scope, filters.calendar_id)
            query = query.where(Post.calendar_id == filters.calendar_id)
        if filters.campaign_id is not None:
            await campaigns.get_visible(session, scope, filters.campaign_id)
            query = query.where(Post.campaign_id == filters.campaign_id)
        if filters.account_ids:
            # post_targets keeps the post's publish_at (the posts module keeps it in step), so
            # the account's index range finds the month's posts without visiting the others.
            query = query.where(
                Post.id.in_(
                    select(PostTarget.post_id).where(
                        PostTarget.account_id.in_(list(filters.account_ids)),
                        PostTarget.publish_at >= start,
                        PostTarget.publish_at < end,
                    )
                )
            )
        if filters.statuses:
            query = query.where(Post.status.in_(list(filters.statuses)))
        if filters.assignee is not None:
            query = query.where(Post.assignee == filters.assignee)
        if page.after is not None:
            after_at, after_id = _decode_after(page.after)
            query = query.where(tuple_(Post.publish_at, Post.id) > tuple_(after_at, after_id))
        query = query.order_by(Post.publish_at, Post.id).limit(page.limit + 1)
        rows = (await session.execute(query)).all()
        shown = rows[: page.limit]
        targets = await self._targets(session, [row.id for row in shown])
        items = [
            PostSummary(
                id=row.id,
                calendar_id=row.calendar_id,
                district_id=row.district_id,
                title=row.title,
                status=row.status,
                publish_at=row.publish_at,
                timezone=row.timezone,
                account_ids=targets.get(row.id, []),
                campaign_id=row.campaign_id,
                author=row.author,
                assignee=row.assignee,
                due_at=row.due_at,
                version=row.version,
            )
            for row in shown
        ]
        if len(rows) <= page.limit:
            return items, None
        last = items[-1]
        return items, [last.publish_at.isoformat(), str(last.id)]

    async def _targets(
        self, session: AsyncSession, post_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, list[uuid.UUID]]:
        if not post_ids:
            return {}
        rows = await session.execute(
            select(PostTarget.post_id, PostTarget.account_id)
            .where(PostTarget.post_id.in_(post_ids))
            .order_by(PostTarget.post_id, PostTarget.account_id)
        )
        found: dict[uuid.UUID, list[uuid.UUID]] = {}
        for post_id, account_id in rows:
            found.setdefault(post_id, []).append(account_id)
        return found


def _decode_after(after: list[Any]) -> tuple[datetime, uuid.UUID]:
    return cursor_key(after, datetime, uuid.UUID)


range_view = RangeView()
