"""The range view of posts (what a calendar screen shows for a month or a week) and the backlog
(the posts without a publication time), with the same filters and pages."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from chassis.database import SessionDep
from chassis.districts import DistrictNotFound, ScopeDep
from chassis.errors import problem_responses
from chassis.instants import Instant
from chassis.pagination import InvalidCursor, Page, PageRequest, decode_cursor
from chassis.query import CommaSeparated
from services.calendar.calendars.service import CalendarNotFound, CampaignNotFound
from services.calendar.schemas import district_query
from services.calendar.views.schemas import BacklogPost, PostStatus, PostSummary, RangeFilters
from services.calendar.views.service import InvalidRange, range_view

router = APIRouter(tags=["views"])

# A month view of a busy district fits on one page.
DEFAULT_RANGE_PAGE_SIZE = 100
MAX_ACCOUNT_FILTERS = 100


def range_page(
    request: Request,
    limit: Annotated[
        int | None,
        Query(ge=1, description="Posts per page (default 100; the service's maximum applies)"),
    ] = None,
    cursor: Annotated[str | None, Query(max_length=1000, description="From `next_cursor`")] = None,
) -> PageRequest:
    maximum: int = request.app.state.settings.max_page_size
    return PageRequest(
        limit=min(limit or DEFAULT_RANGE_PAGE_SIZE, maximum),
        after=decode_cursor(cursor) if cursor else None,
    )


def post_filters(
    district_id: Annotated[
        str | None,
        district_query("This district and those below it"),
    ] = None,
    calendar_id: Annotated[uuid.UUID | None, Query(description="Posts of this calendar")] = None,
    account_id: Annotated[
        CommaSeparated[uuid.UUID] | None,
        Query(
            max_length=MAX_ACCOUNT_FILTERS,
            description="Posts publishing on any of these accounts",
        ),
    ] = None,
    campaign_id: Annotated[uuid.UUID | None, Query(description="Posts of this campaign")] = None,
    status: Annotated[
        CommaSeparated[PostStatus] | None, Query(max_length=9, description="Any of these statuses")
    ] = None,
    assignee: Annotated[
        str | None, Query(min_length=1, max_length=200, description="Posts assigned to this user")
    ] = None,
) -> RangeFilters:
    """The filters the range view and the backlog share; they combine."""
    return RangeFilters(
        district_id=district_id,
        calendar_id=calendar_id,
        account_ids=tuple(dict.fromkeys(account_id or ())),
        campaign_id=campaign_id,
        statuses=tuple(dict.fromkeys(status or ())),
        assignee=assignee,
    )


FiltersDep = Annotated[RangeFilters, Depends(post_filters)]
RangePageDep = Annotated[PageRequest, Depends(range_page)]


@router.get(
    "/posts",
    responses=problem_responses(
        InvalidRange, InvalidCursor, DistrictNotFound, CalendarNotFound, CampaignNotFound
    ),
)
async def posts_in_range(
    session: SessionDep,
    scope: ScopeDep,
    page: RangePageDep,
    filters: FiltersDep,
    start: Annotated[
        Instant,
        Query(alias="from", description="Start of the range (inclusive), with its offset"),
    ],
    end: Annotated[
        Instant, Query(alias="to", description="End of the range (exclusive), with offset")
    ],
) -> Page[PostSummary]:
    """The posts that publish in [`from`, `to`) and that the caller can see (their districts'
    and the company-wide calendar's), ordered by publication time, with filters that combine.
    A range spans at most 400 days (422). Posts without a publication time are not listed:
    they are in the backlog (`GET /posts/backlog`)."""
    return await range_view.posts(session, scope, start, end, filters, page)


@router.get(
    "/posts/backlog",
    responses=problem_responses(
        InvalidCursor, DistrictNotFound, CalendarNotFound, CampaignNotFound
    ),
)
async def posts_in_backlog(
    session: SessionDep, scope: ScopeDep, page: RangePageDep, filters: FiltersDep
) -> Page[BacklogPost]:
    """The backlog: the posts without a publication time (drafts waiting for a slot) that the
    caller can see, oldest first (by creation), with the range view's filters (`district_id`,
    `calendar_id`, `account_id`, `campaign_id`, `status`, `assignee`), paginated the same way
    (`limit`, `cursor` -> `next_cursor`). Every status is listed unless `status` says which
    (`status=draft` for the drafts alone; a post cannot be submitted without a time)."""
    return await range_view.backlog(session, scope, filters, page)
