"""Calendars and campaigns.

There is one company-wide calendar (``district_id`` NULL, seeded by the migration) and exactly
one calendar per district, made when the district arrives from inventory (its
``district.created``); users never create calendars (``POST /calendars`` is 405
``calendars-are-not-created``): posts are grouped by campaigns. A district that arrived before
calendars were made that way gets its calendar on first use: when a post goes on it
(``calendar_for``) or when someone lists the calendars they can read. A district calendar is
named after its district when it is made; renaming it later (PATCH) is the manager's
business, and a renamed district does not rename its calendar.

Who sees what follows ``access``: a calendar or campaign of a district is read by anyone with
a role there or above, the company-wide ones by anyone holding any grant; managing them needs a
manager there (the central team for company-wide ones). What the caller cannot read is 404.

A campaign is company-wide or a district's. It applies to the posts of its district and of
the districts below it (company-wide: every post); ``usable_campaign`` is how posts check that
the campaign they name is one they may use.
"""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.districts import DistrictNotFound, Scope, within
from chassis.errors import NotFound, Problem, Unprocessable
from chassis.pagination import Page, PageRequest, keyset_page
from services.calendar.access import (
    optional_district_path,
    require_manage,
    require_manage_district,
    tree,
)
from services.calendar.calendars import repository
from services.calendar.calendars.schemas import (
    CalendarOut,
    CalendarUpdate,
    CampaignCreate,
    CampaignOut,
    CampaignUpdate,
)
from services.calendar.models import Calendar, Campaign
from services.calendar.repository import insert_row, save_row


class CalendarNotFound(NotFound):
    type_slug = "calendar-not-found"
    title = "Calendar not found"


class CalendarsAreNotCreated(Problem):
    """``POST /calendars``: users do not create calendars (see the module's docstring)."""

    status = 405
    type_slug = "calendars-are-not-created"
    title = "Calendars are not created by users"

    def headers(self) -> dict[str, str] | None:
        return {"Allow": "GET"}


CALENDARS_NOT_CREATED = (
    "Calendars are not created through the API: each district has exactly one calendar, made "
    "when the district arrives from inventory (and the company has one company-wide "
    "calendar). Group posts with campaigns instead (POST /campaigns), for a brand, a "
    "language or an operation; GET /calendars lists the calendars you read, and PATCH "
    "/calendars/{id} renames one."
)


class CampaignNotFound(NotFound):
    type_slug = "campaign-not-found"
    title = "Campaign not found"


class InvalidCampaignDates(Unprocessable):
    type_slug = "invalid-campaign-dates"
    title = "A campaign ends on or after the day it starts"


class CampaignNotUsable(Unprocessable):
    """A post names a campaign it may not use: one the caller cannot see ("unknown", so ids
    cannot be probed), or one of a district the post is not in."""

    type_slug = "campaign-not-usable"
    title = "The post cannot use that campaign"


async def calendar_for(session: AsyncSession, district_id: str | None) -> Calendar:
    """The district's calendar (the company-wide one for None), made if missing. The caller
    has checked the district; one the replica does not know is 404."""
    if district_id is None:
        return await repository.find_company_calendar(session)
    name = await repository.find_district_name(session, district_id)
    if name is None:
        raise DistrictNotFound(f"No district {district_id!r}.")
    return await repository.ensure_district_calendar(session, district_id, name)


async def get_visible(
    session: AsyncSession, scope: Scope, calendar_id: uuid.UUID, *, for_update: bool = False
) -> tuple[Calendar, str | None]:
    """The calendar and its district's path (None for the company-wide one), or 404 when the
    caller cannot read it."""
    return await tree.load_scoped(
        session,
        scope,
        Calendar,
        calendar_id,
        CalendarNotFound,
        shared_down=False,
        for_update=for_update,
    )


async def usable_campaign(
    session: AsyncSession, scope: Scope, post_path: str | None, campaign_id: uuid.UUID
) -> Campaign:
    """The campaign a post at `post_path` (None: the company-wide calendar) names, if the
    caller can see it and it applies to the post's district; else 422."""
    try:
        found, path = await campaigns.get_visible(session, scope, campaign_id)
    except CampaignNotFound:
        raise CampaignNotUsable(
            f"Unknown campaign {campaign_id}.", campaign_id=str(campaign_id), reason="unknown"
        ) from None
    if path is not None and (post_path is None or not within(post_path, path)):
        raise CampaignNotUsable(
            "The campaign belongs to a district the post is not in; a post uses company-wide "
            "campaigns and those of its district or above it.",
            campaign_id=str(campaign_id),
            reason="other_district",
        )
    return found


class CalendarService:
    async def list_visible(
        self, session: AsyncSession, scope: Scope, page: PageRequest
    ) -> Page[CalendarOut]:
        """The company-wide calendar, then one per district the caller reads (made if
        missing), in tree order (by district path)."""
        if not scope.read_paths:
            return Page[CalendarOut](items=[])
        await repository.ensure_readable_calendars(session, scope)
        after = page.after_key(str, uuid.UUID)
        rows = await repository.list_readable_calendars(
            session, scope, after=after, fetch=page.fetch
        )
        return keyset_page(
            rows,
            page,
            key=lambda row: (row[1], row[0].id),
            item=lambda row: CalendarOut.model_validate(row[0]),
        )

    async def get(self, session: AsyncSession, scope: Scope, calendar_id: uuid.UUID) -> CalendarOut:
        found, _ = await get_visible(session, scope, calendar_id)
        return CalendarOut.model_validate(found)

    async def update(
        self, session: AsyncSession, scope: Scope, calendar_id: uuid.UUID, data: CalendarUpdate
    ) -> CalendarOut:
        found, path = await get_visible(session, scope, calendar_id, for_update=True)
        require_manage(scope, path, "Renaming this calendar")
        found.name = data.name
        await session.flush()
        return CalendarOut.model_validate(found)


class CampaignService:
    async def create(
        self, session: AsyncSession, scope: Scope, data: CampaignCreate
    ) -> CampaignOut:
        await require_manage_district(session, scope, data.district_id, "Creating a campaign")
        campaign = Campaign(id=uuid.uuid4(), **data.model_dump(), created_by=scope.principal.sub)
        return CampaignOut.model_validate(await insert_row(session, campaign))

    async def get_visible(
        self,
        session: AsyncSession,
        scope: Scope,
        campaign_id: uuid.UUID,
        *,
        for_update: bool = False,
    ) -> tuple[Campaign, str | None]:
        """The campaign and its district's path (None: company-wide), or 404. A region's
        campaigns are visible to (and usable by) its districts."""
        return await tree.load_scoped(
            session, scope, Campaign, campaign_id, CampaignNotFound, for_update=for_update
        )

    async def get(self, session: AsyncSession, scope: Scope, campaign_id: uuid.UUID) -> CampaignOut:
        found, _ = await self.get_visible(session, scope, campaign_id)
        return CampaignOut.model_validate(found)

    async def update(
        self, session: AsyncSession, scope: Scope, campaign_id: uuid.UUID, data: CampaignUpdate
    ) -> CampaignOut:
        found, path = await self.get_visible(session, scope, campaign_id, for_update=True)
        require_manage(scope, path, "Changing this campaign")
        starts_on = data.starts_on or found.starts_on
        ends_on = data.ends_on or found.ends_on
        if ends_on < starts_on:
            raise InvalidCampaignDates(
                f"The campaign would end on {ends_on}, before it starts on {starts_on}.",
                starts_on=starts_on.isoformat(),
                ends_on=ends_on.isoformat(),
            )
        found.starts_on, found.ends_on = starts_on, ends_on
        if data.name is not None:
            found.name = data.name
        if "description" in data.model_fields_set:
            # An explicit null clears it.
            found.description = data.description
        if data.goals is not None:
            found.goals = [g.model_dump(mode="json") for g in data.goals]
        if data.tags is not None:
            found.tags = data.tags
        found.updated_at = func.now()
        return CampaignOut.model_validate(await save_row(session, found))

    async def list_visible(
        self,
        session: AsyncSession,
        scope: Scope,
        page: PageRequest,
        *,
        district_id: str | None = None,
        active_on: date | None = None,
        tag: str | None = None,
    ) -> Page[CampaignOut]:
        """Visible campaigns, latest start first. With
        `district_id`: those that apply to that district (company-wide, its ancestors' and its
        own)."""
        if not scope.read_paths:
            return Page[CampaignOut](items=[])
        applying_to = await optional_district_path(session, scope, district_id)
        after = page.after_key(date, uuid.UUID)
        rows = await repository.list_reaching_campaigns(
            session,
            scope,
            applying_to=applying_to,
            active_on=active_on,
            tag=tag,
            after=after,
            fetch=page.fetch,
        )
        return keyset_page(
            rows, page, key=lambda c: (c.starts_on, c.id), item=CampaignOut.model_validate
        )


calendars = CalendarService()
campaigns = CampaignService()
