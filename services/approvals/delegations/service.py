"""Delegations: out of office, the delegator lets a delegate decide for them for a period.

Approvals learns who holds which role only from the principal of each call, so a delegation
keeps the delegator's grants as they were when they delegated (``{district: [roles]}``): the
delegate may decide the steps those grants cover, recorded as ``via="delegation"`` with
``acting_for`` the delegator (``requests.eligibility`` asks ``active_delegations_to``). A
delegation does not follow a later change of the delegator's roles; they revoke it and
delegate again.

A period is half-open, ``[starts_at, ends_at)``, at most 90 days, and must not be over already.
The same delegator may not hand the same delegate two periods that overlap (409): one is
enough, and revoking one must not leave another silently in force. Delegations to different
people may overlap (a deputy for brand, another for legal, or simply two deputies).

Only the delegator revokes. The delegate sees the delegation in their list, so revoking it is
refused to them (403); anyone else gets 404, as for any object they may not see.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import func, or_, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.errors import Conflict, Forbidden, NotFound, Unprocessable
from chassis.pagination import PageRequest, cursor_key
from chassis.principal import Principal
from services.approvals.delegations.schemas import DelegationCreate, DelegationOut
from services.approvals.models import Delegation

Direction = Literal["given", "received"]


class DelegationNotFound(NotFound):
    type_slug = "delegation-not-found"
    title = "Delegation not found"


class SelfDelegation(Unprocessable):
    type_slug = "self-delegation"
    title = "You cannot delegate to yourself"


class PeriodOver(Unprocessable):
    type_slug = "delegation-period-over"
    title = "The period is already over"


class NothingToDelegate(Unprocessable):
    type_slug = "nothing-to-delegate"
    title = "You hold no role to delegate"


class OverlappingDelegation(Conflict):
    type_slug = "overlapping-delegation"
    title = "You already delegate to this person for part of that period"


class NotYourDelegation(Forbidden):
    type_slug = "not-the-delegator"
    title = "Only the delegator may revoke a delegation"


async def active_delegations_to(
    session: AsyncSession, delegate: str, at: datetime
) -> list[Delegation]:
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


class DelegationService:
    async def create(
        self, session: AsyncSession, principal: Principal, data: DelegationCreate
    ) -> Delegation:
        if data.delegate == principal.sub:
            raise SelfDelegation("Name someone else as your delegate.")
        if data.ends_at <= datetime.now(UTC):
            raise PeriodOver("`ends_at` is in the past; a delegation must still be to come.")
        grants = {d: sorted(roles) for d, roles in sorted(principal.grants.items()) if roles}
        if not grants:
            raise NothingToDelegate("You hold no role on any district, so nothing to delegate.")
        # Serialises creations for one (delegator, delegate) pair, so two concurrent requests
        # cannot both pass the overlap check below.
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": "approvals.delegation:" + json.dumps([principal.sub, data.delegate])},
        )
        clash = await session.scalar(
            select(Delegation.id)
            .where(
                Delegation.delegator == principal.sub,
                Delegation.delegate == data.delegate,
                Delegation.revoked_at.is_(None),
                Delegation.starts_at < data.ends_at,
                Delegation.ends_at > data.starts_at,
            )
            .limit(1)
        )
        if clash is not None:
            raise OverlappingDelegation(
                f"Delegation {clash} to {data.delegate} overlaps this period; revoke it or "
                "choose another period.",
                delegation_id=str(clash),
            )
        delegation = Delegation(
            id=uuid.uuid4(),
            delegator=principal.sub,
            delegate=data.delegate,
            grants=grants,
            starts_at=data.starts_at,
            ends_at=data.ends_at,
            reason=data.reason,
        )
        session.add(delegation)
        await session.flush()
        await session.refresh(delegation)
        return delegation

    async def list_mine(
        self,
        session: AsyncSession,
        principal: Principal,
        page: PageRequest,
        *,
        direction: Direction | None = None,
        include_revoked: bool = False,
    ) -> tuple[list[DelegationOut], list[Any] | None]:
        """The delegations the caller gave or received (or one of the two), latest period
        first; and the cursor of the next page."""
        me = principal.sub
        if direction == "given":
            query = select(Delegation).where(Delegation.delegator == me)
        elif direction == "received":
            query = select(Delegation).where(Delegation.delegate == me)
        else:
            query = select(Delegation).where(
                or_(Delegation.delegator == me, Delegation.delegate == me)
            )
        if not include_revoked:
            query = query.where(Delegation.revoked_at.is_(None))
        if page.after is not None:
            starts_at, last_id = cursor_key(page.after, datetime, uuid.UUID)
            query = query.where(
                tuple_(Delegation.starts_at, Delegation.id) < tuple_(starts_at, last_id)
            )
        query = query.order_by(Delegation.starts_at.desc(), Delegation.id.desc()).limit(
            page.limit + 1
        )
        rows = list(await session.scalars(query))
        items = [DelegationOut.model_validate(d) for d in rows[: page.limit]]
        if len(rows) <= page.limit:
            return items, None
        last = items[-1]
        return items, [last.starts_at.isoformat(), str(last.id)]

    async def get(
        self, session: AsyncSession, principal: Principal, delegation_id: uuid.UUID
    ) -> Delegation:
        """A delegation the caller gave or received; 404 for anyone else's."""
        delegation = await session.get(Delegation, delegation_id)
        if delegation is None or principal.sub not in (delegation.delegator, delegation.delegate):
            raise DelegationNotFound(f"No delegation {delegation_id}.")
        return delegation

    async def revoke(
        self, session: AsyncSession, principal: Principal, delegation_id: uuid.UUID
    ) -> None:
        """End the delegation now; revoking it again changes nothing. Decisions already made
        through it stand."""
        delegation = await session.get(Delegation, delegation_id, with_for_update=True)
        if delegation is None or principal.sub not in (delegation.delegator, delegation.delegate):
            raise DelegationNotFound(f"No delegation {delegation_id}.")
        if delegation.delegator != principal.sub:
            raise NotYourDelegation(f"Only {delegation.delegator} may revoke this delegation.")
        if delegation.revoked_at is None:
            delegation.revoked_at = func.now()
            await session.flush()


delegations = DelegationService()
