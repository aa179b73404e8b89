"""Every query of delegations."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Select, false, func, or_, select, text, true
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.pagination import PageRequest, page_of
from services.approvals.delegations.schemas import Direction
from services.approvals.models import Delegation


async def list_in_force_to(session: AsyncSession, delegate: str, at: datetime) -> list[Delegation]:
    """The delegations in force for `delegate` at `at` (timezone-aware): not revoked, with
    ``starts_at <= at < ends_at``; earliest first."""
    rows = await session.scalars(
        select(Delegation)
        .where(
            Delegation.delegate == delegate,
            Delegation.revoked_at.is_(None),
            Delegation.starts_at <= at,
            Delegation.ends_at > at,
        )
        .order_by(Delegation.starts_at, Delegation.id)
    )
    return list(rows)


async def lock_delegator(session: AsyncSession, delegator: str) -> None:
    """Serialise the creations of one delegator until the transaction ends."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": "approvals.delegation:" + json.dumps([delegator])},
    )


async def find_overlapping(
    session: AsyncSession, delegator: str, delegate: str, starts_at: datetime, ends_at: datetime
) -> uuid.UUID | None:
    """A delegation in force or planned from `delegator` to `delegate` that overlaps the
    half-open period."""
    found: uuid.UUID | None = await session.scalar(
        select(Delegation.id)
        .where(
            Delegation.delegator == delegator,
            Delegation.delegate == delegate,
            Delegation.revoked_at.is_(None),
            Delegation.starts_at < ends_at,
            Delegation.ends_at > starts_at,
        )
        .limit(1)
    )
    return found


async def list_periods_to_come(
    session: AsyncSession, delegator: str, now: datetime
) -> list[tuple[datetime, datetime]]:
    """The periods of the delegator's delegations in force or planned (not revoked, not
    ended), whole."""
    rows = await session.execute(
        select(Delegation.starts_at, Delegation.ends_at).where(
            Delegation.delegator == delegator,
            Delegation.revoked_at.is_(None),
            Delegation.ends_at > now,
        )
    )
    return [(starts_at, ends_at) for starts_at, ends_at in rows.all()]


def naming_districts(district_ids: Sequence[str] | None) -> ColumnElement[bool]:
    """SQL: delegations whose grants name one of `district_ids` (None: every delegation)."""
    if district_ids is None:
        return true()
    if not district_ids:
        return false()
    named: ColumnElement[bool] = Delegation.grants.has_any(array(list(district_ids)))
    return named


async def list_delegations(
    session: AsyncSession,
    person: str,
    *,
    direction: Direction | None,
    managed: ColumnElement[bool],
    include_revoked: bool,
    page: PageRequest,
) -> list[Delegation]:
    """`person`'s delegations given, received (or both), or the `managed` ones; latest
    period first."""
    if direction == "given":
        which: ColumnElement[bool] = Delegation.delegator == person
    elif direction == "received":
        which = Delegation.delegate == person
    elif direction == "managed":
        which = managed
    else:
        which = or_(Delegation.delegator == person, Delegation.delegate == person)
    query = select(Delegation).where(which)
    if not include_revoked:
        query = query.where(Delegation.revoked_at.is_(None))
    query = page_of(query, Delegation.starts_at, Delegation.id, page, descending=True)
    return list(await session.scalars(query))


async def get(
    session: AsyncSession, delegation_id: uuid.UUID, *, lock: bool = False
) -> Delegation | None:
    return await session.get(Delegation, delegation_id, with_for_update=lock)


async def list_to_come_of(session: AsyncSession, delegator: str) -> list[Delegation]:
    """The delegator's delegations in force or planned, by id."""
    return list(await session.scalars(_to_come_of(delegator)))


async def lock_to_come_of(
    session: AsyncSession, delegator: str, ids: Sequence[uuid.UUID]
) -> list[Delegation]:
    """Those of `ids` still in force or planned, locked in id order and read again."""
    rows = await session.scalars(
        _to_come_of(delegator)
        .where(Delegation.id.in_(list(ids)))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return list(rows)


def _to_come_of(delegator: str) -> Select[Delegation]:
    return (
        select(Delegation)
        .where(
            Delegation.delegator == delegator,
            Delegation.revoked_at.is_(None),
            Delegation.ends_at > func.now(),
        )
        .order_by(Delegation.id)
    )
