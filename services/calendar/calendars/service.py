"""Calendars and campaigns.

There is one company-wide calendar (``district_id`` NULL, seeded by the migration) and one
calendar per district, made on first use: when a post goes on it (``calendar_for``) or when
someone lists the calendars they can read. A district calendar is named after its district
when it is made; renaming it later (PATCH) is the manager's business, and a renamed district
does not rename its calendar.

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
from typing import Any

from sqlalchemy import ColumnElement, Text, and_, cast, exists, func, or_, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.errors import NotFound, Unprocessable
from chassis.pagination import PageRequest, cursor_key
from services.calendar.access import (
    DistrictNotFound,
    Scope,
    applies_to,
    district_path,
    load_scoped,
    reaching,
    require_manage,
    within,
)
from services.calendar.calendars.schemas import (
    CalendarOut,
    CalendarUpdate,
    CampaignCreate,
    CampaignOut,
    CampaignUpdate,
)
from services.calendar.models import Calendar, Campaign, districts


class CalendarNotFound(NotFound):
    type_slug = "calendar-not-found"
    title = "Calendar not found"


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


def _in_read_paths(scope: Scope) -> ColumnElement[bool]:
    return and_(
        text("districts.path <@ CAST(:read_paths AS ltree[])").bindparams(
            read_paths=list(scope.read_paths)
        )
    )


async def calendar_for(session: AsyncSession, district_id: str | None) -> Calendar:
    """The district's calendar (the company-wide one for None), made if missing. The caller
    has checked the district; one the replica does not know is 404."""
    if district_id is None:
        return (
            await session.execute(select(Calendar).where(Calendar.district_id.is_(None)))
        ).scalar_one()
    name = await session.scalar(select(districts.c.name).where(districts.c.id == district_id))
    if name is None:
        raise DistrictNotFound(f"No district {district_id!r}.")
    # Two first posts of a district at once: the loser of the race reads the winner's row.
    await session.execute(
        insert(Calendar)
        .values(id=uuid.uuid4(), district_id=district_id, name=name)
        .on_conflict_do_nothing()
    )
    return (
        await session.execute(select(Calendar).where(Calendar.district_id == district_id))
    ).scalar_one()


async def get_visible(
    session: AsyncSession, scope: Scope, calendar_id: uuid.UUID, *, for_update: bool = False
) -> tuple[Calendar, str | None]:
    """The calendar and its district's path (None for the company-wide one), or 404 when the
    caller cannot read it."""
    return await load_scoped(
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
    ) -> tuple[list[CalendarOut], list[Any] | None]:
        """The company-wide calendar, then one per district the caller reads (made if
        missing), in tree order (by district path), and the next page's cursor."""
        if not scope.read_paths:
            return [], None
        await session.execute(
            insert(Calendar)
            .from_select(
                ["id", "district_id", "name"],
                select(func.gen_random_uuid(), districts.c.id, districts.c.name).where(
                    _in_read_paths(scope),
                    ~exists().where(Calendar.district_id == districts.c.id),
                ),
            )
            .on_conflict_do_nothing()
        )
        # "C" collation: byte order, so the tree order and the cursor agree on every server.
        sort_key = func.coalesce(cast(districts.c.path, Text), "").collate("C")
        query = (
            select(Calendar, sort_key)
            .outerjoin(districts, districts.c.id == Calendar.district_id)
            .where(or_(Calendar.district_id.is_(None), _in_read_paths(scope)))
        )
        if page.after is not None:
            after_key, after_id = _decode_calendar_after(page.after)
            query = query.where(tuple_(sort_key, Calendar.id) > tuple_(after_key, after_id))
        rows = (
            await session.execute(query.order_by(sort_key, Calendar.id).limit(page.limit + 1))
        ).all()
        items = [CalendarOut.model_validate(c) for c, _ in rows[: page.limit]]
        if len(rows) <= page.limit:
            return items, None
        last_calendar, last_key = rows[page.limit - 1]
        return items, [last_key, str(last_calendar.id)]

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
        path = None
        if data.district_id is not None:
            path = await district_path(session, scope, data.district_id)
        require_manage(scope, path, "Creating a campaign")
        campaign = Campaign(
            id=uuid.uuid4(),
            district_id=data.district_id,
            name=data.name,
            description=data.description,
            starts_on=data.starts_on,
            ends_on=data.ends_on,
            goals=[g.model_dump(mode="json") for g in data.goals],
            tags=data.tags,
            created_by=scope.principal.sub,
        )
        session.add(campaign)
        await session.flush()
        await session.refresh(campaign)
        return CampaignOut.model_validate(campaign)

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
        return await load_scoped(
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
        await session.flush()
        await session.refresh(found)
        return CampaignOut.model_validate(found)

    async def list_visible(
        self,
        session: AsyncSession,
        scope: Scope,
        page: PageRequest,
        *,
        district_id: str | None = None,
        active_on: date | None = None,
        tag: str | None = None,
    ) -> tuple[list[CampaignOut], list[Any] | None]:
        """Visible campaigns, latest start first, and the next page's cursor. With
        `district_id`: those that apply to that district (company-wide, its ancestors' and its
        own)."""
        if not scope.read_paths:
            return [], None
        query = select(Campaign).where(reaching(Campaign.district_id, scope))
        if district_id is not None:
            path = await district_path(session, scope, district_id)
            query = query.where(applies_to(Campaign.district_id, path))
        if active_on is not None:
            query = query.where(Campaign.starts_on <= active_on, Campaign.ends_on >= active_on)
        if tag is not None:
            query = query.where(Campaign.tags.contains([tag]))
        if page.after is not None:
            after_start, after_id = _decode_campaign_after(page.after)
            query = query.where(
                tuple_(Campaign.starts_on, Campaign.id) < tuple_(after_start, after_id)
            )
        query = query.order_by(Campaign.starts_on.desc(), Campaign.id.desc()).limit(page.limit + 1)
        rows = list((await session.execute(query)).scalars())
        items = [CampaignOut.model_validate(c) for c in rows[: page.limit]]
        if len(rows) <= page.limit:
            return items, None
        last = items[-1]
        return items, [last.starts_on.isoformat(), str(last.id)]


def _decode_calendar_after(after: list[Any]) -> tuple[str, uuid.UUID]:
    return cursor_key(after, str, uuid.UUID)


def _decode_campaign_after(after: list[Any]) -> tuple[date, uuid.UUID]:
    return cursor_key(after, date, uuid.UUID)


calendars = CalendarService()
campaigns = CampaignService()
