"""The range view: the posts of a time range, as a calendar's month or week view asks.

It is the hottest read of the service (every calendar screen), so it reads only the summary
columns, walks the ``(publish_at, id)`` index in order with keyset pagination and stops at the
page's end, and fetches the page's target accounts in one more query. Posts without a
publication time are not on any range: they are drafts still waiting for a slot, listed by
the backlog (``backlog``) with the same filters, oldest first.

What the caller sees: posts of the districts they read and the company-wide calendar's posts.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from chassis.districts import Scope
from chassis.errors import Unprocessable
from chassis.pagination import Page, PageRequest, keyset_page
from services.calendar.access import tree
from services.calendar.calendars.service import campaigns, get_visible
from services.calendar.views import repository
from services.calendar.views.schemas import BacklogPost, PostSummary, RangeFilters

MAX_RANGE = timedelta(days=400)


class InvalidRange(Unprocessable):
    type_slug = "invalid-range"
    title = "The time range is not valid"


def check_range(start: datetime, end: datetime) -> None:
    if end <= start:
        raise InvalidRange("`to` must be after `from`.")
    if end - start > MAX_RANGE:
        raise InvalidRange(
            f"A range spans at most {MAX_RANGE.days} days; page through longer ones.",
            max_days=MAX_RANGE.days,
        )


class RangeView:
    async def posts(
        self,
        session: AsyncSession,
        scope: Scope,
        start: datetime,
        end: datetime,
        filters: RangeFilters,
        page: PageRequest,
    ) -> Page[PostSummary]:
        """Visible posts publishing in [start, end), by (publish_at, id)."""
        check_range(start, end)
        if not scope.read_paths:
            return Page[PostSummary](items=[])
        ids, include_company = await self._districts(session, scope, filters)
        after = page.after_key(datetime, uuid.UUID)
        rows = await repository.list_range_summaries(
            session,
            repository.RangeQuery(
                start=start,
                end=end,
                district_ids=ids,
                include_company=include_company,
                filters=filters,
            ),
            after=after,
            fetch=page.fetch,
        )
        targets = await repository.targets_of(session, [row.id for row in rows[: page.limit]])
        return keyset_page(
            rows,
            page,
            key=lambda row: (row.publish_at, row.id),
            item=lambda row: PostSummary.model_validate(
                {**_summary(row), "account_ids": targets.get(row.id, [])}
            ),
        )

    async def backlog(
        self, session: AsyncSession, scope: Scope, filters: RangeFilters, page: PageRequest
    ) -> Page[BacklogPost]:
        """Visible posts without a publication time, oldest first (by creation, id)."""
        if not scope.read_paths:
            return Page[BacklogPost](items=[])
        ids, include_company = await self._districts(session, scope, filters)
        rows = await repository.list_backlog_summaries(
            session,
            ids,
            include_company,
            filters,
            after=page.after_key(datetime, uuid.UUID),
            fetch=page.fetch,
        )
        targets = await repository.targets_of(session, [row.id for row in rows[: page.limit]])
        return keyset_page(
            rows,
            page,
            key=lambda row: (row.created_at, row.id),
            item=lambda row: BacklogPost.model_validate(
                {
                    **_summary(row),
                    "created_at": row.created_at,
                    "account_ids": targets.get(row.id, []),
                }
            ),
        )

    async def _districts(
        self, session: AsyncSession, scope: Scope, filters: RangeFilters
    ) -> tuple[list[str], bool]:
        """The ids of the districts whose posts the caller sees through `filters`, and
        whether the company-wide calendar's posts are among them. Each id filter names an
        object the caller must be able to see (404 otherwise), as every endpoint taking an id
        does."""
        if filters.district_id is not None:
            path = await tree.district_path(session, scope, filters.district_id)
            # The district is readable, so everything below it is too.
            ids = await repository.list_district_ids(session, [path])
            include_company = False
        else:
            # What tree.visible says, with the districts resolved first: given the ids, the
            # planner knows how few posts a small district has and reads them through the
            # district index instead of walking the whole month.
            ids = await repository.list_district_ids(session, scope.read_paths)
            include_company = True
        if filters.calendar_id is not None:
            await get_visible(session, scope, filters.calendar_id)
        if filters.campaign_id is not None:
            await campaigns.get_visible(session, scope, filters.campaign_id)
        return ids, include_company


def _summary(row: Any) -> dict[str, Any]:
    """The summary columns of a row, by name (``repository.SUMMARY_COLUMNS``)."""
    return {column.key: getattr(row, column.key) for column in repository.SUMMARY_COLUMNS}


range_view = RangeView()
