"""Calendars (company-wide and per district) and campaigns. Users do not create calendars:
each district has exactly one, made when the district arrives, and posts are grouped by
campaigns (``POST /calendars`` answers 405 saying so). Reading needs any role on the district
or above it (the company-wide ones: any grant); changing needs a manager there (the central
team for company-wide ones). Another district's calendar or campaign is 404."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, status

from chassis.database import SessionDep
from chassis.districts import DistrictNotFound, ScopeDep
from chassis.errors import Forbidden, problem_responses
from chassis.pagination import InvalidCursor, Page, PageDep
from services.calendar.calendars.schemas import (
    CalendarOut,
    CalendarUpdate,
    CampaignCreate,
    CampaignOut,
    CampaignUpdate,
)
from services.calendar.calendars.service import (
    CALENDARS_NOT_CREATED,
    CalendarNotFound,
    CalendarsAreNotCreated,
    CampaignNotFound,
    InvalidCampaignDates,
    calendars,
    campaigns,
)
from services.calendar.schemas import district_query

router = APIRouter(tags=["calendars"])


@router.get("/calendars", responses=problem_responses(InvalidCursor))
async def list_calendars(session: SessionDep, scope: ScopeDep, page: PageDep) -> Page[CalendarOut]:
    """The calendars the caller can read: the company-wide one first, then one per district
    they read (their own and those below it), in tree order.

    **Calendars are not created by users.** Each district has exactly one calendar, made when
    the district arrives from inventory and named after it (`PATCH` renames it), and there is
    one company-wide calendar. To group posts (a brand, a language, an operation), use
    campaigns (`POST /campaigns`). `POST /calendars` answers 405."""
    return await calendars.list_visible(session, scope, page)


@router.post(
    "/calendars",
    status_code=status.HTTP_405_METHOD_NOT_ALLOWED,
    response_model=None,
    responses=problem_responses(CalendarsAreNotCreated),
    summary="Calendars are not created (405)",
)
async def create_calendar() -> None:
    """Always 405 (`Allow: GET`): users do not create calendars. Each district has exactly one
    calendar, made when the district arrives, and there is one company-wide calendar; posts
    are grouped by campaigns (`POST /campaigns`)."""
    raise CalendarsAreNotCreated(CALENDARS_NOT_CREATED)


@router.get(
    "/calendars/{calendar_id}",
    responses=problem_responses(CalendarNotFound),
)
async def get_calendar(calendar_id: uuid.UUID, session: SessionDep, scope: ScopeDep) -> CalendarOut:
    """One calendar."""
    return await calendars.get(session, scope, calendar_id)


@router.patch(
    "/calendars/{calendar_id}",
    responses=problem_responses(CalendarNotFound, Forbidden),
)
async def update_calendar(
    calendar_id: uuid.UUID, data: CalendarUpdate, session: SessionDep, scope: ScopeDep
) -> CalendarOut:
    """Rename a calendar. Needs a manager role on its district (the central team for the
    company-wide calendar)."""
    return await calendars.update(session, scope, calendar_id, data)


@router.post(
    "/campaigns",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(DistrictNotFound, Forbidden),
)
async def create_campaign(
    data: CampaignCreate, session: SessionDep, scope: ScopeDep
) -> CampaignOut:
    """Create a campaign for a district (a manager there) or company-wide (`district_id` null;
    the central team). It applies to the posts of its district and those below it. Dates are
    whole days, `ends_on` inclusive and not before `starts_on` (422)."""
    return await campaigns.create(session, scope, data)


@router.get(
    "/campaigns",
    responses=problem_responses(InvalidCursor, DistrictNotFound),
)
async def list_campaigns(
    session: SessionDep,
    scope: ScopeDep,
    page: PageDep,
    district_id: Annotated[
        str | None,
        district_query(
            "Campaigns that apply to this district: company-wide ones, its "
            "ancestors' (those the caller can read) and its own",
        ),
    ] = None,
    active_on: Annotated[date | None, Query(description="Campaigns running on this day")] = None,
    tag: Annotated[str | None, Query(max_length=50, description="Campaigns with this tag")] = None,
) -> Page[CampaignOut]:
    """The campaigns the caller can see, latest start first."""
    return await campaigns.list_visible(
        session, scope, page, district_id=district_id, active_on=active_on, tag=tag
    )


@router.get(
    "/campaigns/{campaign_id}",
    responses=problem_responses(CampaignNotFound),
)
async def get_campaign(campaign_id: uuid.UUID, session: SessionDep, scope: ScopeDep) -> CampaignOut:
    """One campaign."""
    return await campaigns.get(session, scope, campaign_id)


@router.patch(
    "/campaigns/{campaign_id}",
    responses=problem_responses(CampaignNotFound, Forbidden, InvalidCampaignDates),
)
async def update_campaign(
    campaign_id: uuid.UUID, data: CampaignUpdate, session: SessionDep, scope: ScopeDep
) -> CampaignOut:
    """Change a campaign; fields left out keep their value (`description: null` clears it).
    Needs a manager role on its district (the central team for a company-wide one). The
    resulting dates must be in order (422)."""
    return await campaigns.update(session, scope, campaign_id, data)
