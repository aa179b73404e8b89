"""Every query of calendars and campaigns."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import ColumnElement, Text, and_, cast, exists, func, or_, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.districts import Scope
from chassis.pagination import keyset_slice
from services.calendar.access import tree
from services.calendar.models import Calendar, Campaign, districts


def _in_read_paths(scope: Scope) -> ColumnElement[bool]:
    return and_(
        text("districts.path <@ CAST(:read_paths AS ltree[])").bindparams(
            read_paths=list(scope.read_paths)
        )
    )


async def find_company_calendar(session: AsyncSession) -> Calendar:
    """The company-wide calendar (the migration seeds it)."""
    return (
        await session.execute(select(Calendar).where(Calendar.district_id.is_(None)))
    ).scalar_one()


async def find_district_name(session: AsyncSession, district_id: str) -> str | None:
    """The district's name in the replica; None for one it does not know."""
    name = await session.scalar(select(districts.c.name).where(districts.c.id == district_id))
    return None if name is None else str(name)


async def ensure_district_calendar(session: AsyncSession, district_id: str, name: str) -> Calendar:
    """The district's calendar, made with `name` if missing. Two first posts of a district at
    once: the loser of the race reads the winner's row."""
    await session.execute(
        insert(Calendar)
        .values(id=uuid.uuid4(), district_id=district_id, name=name)
        .on_conflict_do_nothing()
    )
    return (
        await session.execute(select(Calendar).where(Calendar.district_id == district_id))
    ).scalar_one()


async def ensure_readable_calendars(session: AsyncSession, scope: Scope) -> None:
    """Make the missing calendars of the districts the caller reads, each named after its
    district."""
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


async def list_readable_calendars(
    session: AsyncSession, scope: Scope, *, after: tuple[str, uuid.UUID] | None, fetch: int
) -> list[tuple[Calendar, str]]:
    """The company-wide calendar and those of the districts the caller reads, each with its
    sort key (its district's path, "" for the company-wide one), in tree order after the
    keyset `after`."""
    # "C" collation: byte order, so the tree order and the cursor agree on every server.
    sort_key = func.coalesce(cast(districts.c.path, Text), "").collate("C")
    query = (
        select(Calendar, sort_key)
        .outerjoin(districts, districts.c.id == Calendar.district_id)
        .where(or_(Calendar.district_id.is_(None), _in_read_paths(scope)))
    )
    query = keyset_slice(query, (sort_key, Calendar.id), after=after, limit=fetch)
    rows = (await session.execute(query)).all()
    return [(calendar, str(key)) for calendar, key in rows]


async def list_reaching_campaigns(
    session: AsyncSession,
    scope: Scope,
    *,
    applying_to: str | None,
    active_on: date | None,
    tag: str | None,
    after: tuple[date, uuid.UUID] | None,
    fetch: int,
) -> list[Campaign]:
    """Campaigns that reach a district the caller reads, latest start first, after the keyset
    `after`: only those applying to the district at path `applying_to` when given, running on
    `active_on` and tagged `tag` when given."""
    query = select(Campaign).where(tree.reaching(Campaign.district_id, scope))
    if applying_to is not None:
        query = query.where(tree.applies_to(Campaign.district_id, applying_to))
    if active_on is not None:
        query = query.where(Campaign.starts_on <= active_on, Campaign.ends_on >= active_on)
    if tag is not None:
        query = query.where(Campaign.tags.contains([tag]))
    query = keyset_slice(
        query, (Campaign.starts_on, Campaign.id), after=after, limit=fetch, descending=True
    )
    return list((await session.execute(query)).scalars())
