"""Delegations: out of office, the delegator lets a delegate decide for them for a period.

Approvals learns who holds which role only from the principal of each call, so a delegation
keeps the delegator's grants as they were when they delegated (``{district: [roles]}``): the
delegate may decide the steps those grants cover, recorded as ``via="delegation"`` with
``acting_for`` the delegator (``requests.eligibility`` asks ``active_delegations_to``).

A delegation follows its delegator's roles down, never up: whenever the delegator calls
approvals again (deciding, listing their pending approvals, managing delegations),
``narrow_to_current`` cuts each of their delegations in force or planned down to the grants
they hold now, and revokes one left with none. A delegator who lost a role and never calls
again is not seen by approvals; for them a manager of their district (or the central team)
lists and revokes the delegation. A delegate never decides a request written by the delegator
(nor by themselves): see ``requests``.

Bounds (settings ``APPROVALS_DELEGATION_MAX_LEAD_DAYS`` and ``_MAX_COVERAGE_DAYS``, 90 and 90
by default): a period is half-open, ``[starts_at, ends_at)``, at most 90 days, must not be
over already, and must start within the lead from now. All of one delegator's delegations in
force or planned (not revoked, not ended; to anyone; overlapping periods counted once, whole
periods counted, their past part too) may cover at most the coverage: back-to-back or
staggered periods cannot make a standing transfer of authority out of "out of office", which
belongs to the identity provider. The same delegator may not hand the same delegate two
periods that overlap (409): one is enough, and revoking one must not leave another silently in
force. Delegations to different people may overlap (a deputy for brand, another for legal).

Who sees and revokes: the delegator and the delegate see it; a manager of a district in its
grants (or above it) and the central team see it too (``direction=managed`` lists those) and
may revoke it, as may the delegator. The delegate may not revoke it (403); anyone else gets
404, as for any object they may not see.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import false, func
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.districts import Scope, is_central
from chassis.errors import Conflict, Forbidden, NotFound, Unprocessable
from chassis.pagination import Page, PageRequest, keyset_page
from chassis.principal import Principal
from services.approvals.access import tree
from services.approvals.delegations import repository
from services.approvals.delegations.schemas import DelegationCreate, DelegationOut, Direction
from services.approvals.models import Delegation
from services.approvals.repository import any_district_under, list_district_ids_under


@dataclass(frozen=True)
class StandIn:
    """Someone the caller stands in for through a delegation, and the scope delegated."""

    delegator: str
    scope: Scope


@dataclass(frozen=True)
class DelegationBounds:
    """How far ahead a delegation may start, and how much one delegator may delegate."""

    max_lead: timedelta
    max_coverage: timedelta


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
    title = "Only the delegator or a manager of their district may revoke a delegation"


class StartsTooLate(Unprocessable):
    type_slug = "delegation-starts-too-late"
    title = "The delegation starts too far ahead"


class CoverageExceeded(Conflict):
    type_slug = "delegation-coverage-exceeded"
    title = "Your delegations would cover too long a time"


def covered(periods: list[tuple[datetime, datetime]]) -> timedelta:
    """The time the periods cover together, overlapping parts counted once."""
    total = timedelta(0)
    end: datetime | None = None
    for starts_at, ends_at in sorted(periods):
        if end is None or starts_at > end:
            total += ends_at - starts_at
            end = ends_at
        elif ends_at > end:
            total += ends_at - end
            end = ends_at
    return total


async def active_delegations_to(
    session: AsyncSession, delegate: str, at: datetime
) -> list[Delegation]:
    """The delegations in force for `delegate` at `at` (timezone-aware): not revoked, with
    ``starts_at <= at < ends_at``; earliest first."""
    return await repository.list_in_force_to(session, delegate, at)


def delegator_of(delegation: Delegation, principal: Principal) -> Principal:
    """The delegator as their delegate may stand in for them: with the grants they delegated,
    for as long as the delegate's own principal is valid."""
    return Principal(
        sub=delegation.delegator,
        grants={d: frozenset(r) for d, r in delegation.grants.items()},
        exp=principal.exp,
    )


async def standing_in_for(session: AsyncSession, principal: Principal) -> list[StandIn]:
    """Whom the caller stands in for now, each with the scope delegated to them; earliest
    delegation first. The one place a delegation becomes a principal."""
    return [
        StandIn(
            delegator=delegation.delegator,
            scope=await tree.scope_of(session, delegator_of(delegation, principal)),
        )
        for delegation in await active_delegations_to(session, principal.sub, datetime.now(UTC))
    ]


class DelegationService:
    async def create(
        self,
        session: AsyncSession,
        principal: Principal,
        data: DelegationCreate,
        bounds: DelegationBounds,
    ) -> Delegation:
        if data.delegate == principal.sub:
            raise SelfDelegation("Name someone else as your delegate.")
        now = datetime.now(UTC)
        if data.ends_at <= now:
            raise PeriodOver("`ends_at` is in the past; a delegation must still be to come.")
        if data.starts_at > now + bounds.max_lead:
            raise StartsTooLate(
                f"A delegation starts within {bounds.max_lead.days} days from now; delegate "
                "closer to the time.",
                max_lead_days=bounds.max_lead.days,
            )
        grants = {d: sorted(roles) for d, roles in sorted(principal.grants.items()) if roles}
        if not grants:
            raise NothingToDelegate("You hold no role on any district, so nothing to delegate.")
        # Serialises creations of one delegator, so two concurrent requests cannot both pass
        # the overlap and coverage checks below.
        await repository.lock_delegator(session, principal.sub)
        await self.narrow_to_current(session, principal)
        clash = await repository.find_overlapping(
            session, principal.sub, data.delegate, data.starts_at, data.ends_at
        )
        if clash is not None:
            raise OverlappingDelegation(
                f"Delegation {clash} to {data.delegate} overlaps this period; revoke it or "
                "choose another period.",
                delegation_id=str(clash),
            )
        in_force = await repository.list_periods_to_come(session, principal.sub, now)
        total = covered([*in_force, (data.starts_at, data.ends_at)])
        if total > bounds.max_coverage:
            raise CoverageExceeded(
                f"With this one your delegations in force or planned would cover "
                f"{total / timedelta(days=1):.1f} days; at most {bounds.max_coverage.days} "
                "days in all. A longer absence is a change of roles.",
                max_coverage_days=bounds.max_coverage.days,
            )
        delegation = Delegation(
            id=uuid.uuid4(), delegator=principal.sub, grants=grants, **data.model_dump()
        )
        session.add(delegation)
        await session.flush()
        await session.refresh(delegation)
        return delegation

    async def list_mine(
        self,
        session: AsyncSession,
        scope: Scope,
        page: PageRequest,
        *,
        direction: Direction | None = None,
        include_revoked: bool = False,
    ) -> Page[DelegationOut]:
        """The delegations the caller gave or received (or one of the two), or those they
        manage (``managed``), latest period first."""
        await self.narrow_to_current(session, scope.principal)
        managed = (
            repository.naming_districts(await self._managed_districts(session, scope))
            if direction == "managed"
            else false()
        )
        rows = await repository.list_delegations(
            session,
            scope.principal.sub,
            direction=direction,
            managed=managed,
            include_revoked=include_revoked,
            page=page,
        )
        return keyset_page(
            rows, page, key=lambda d: (d.starts_at, d.id), item=DelegationOut.model_validate
        )

    async def get(
        self, session: AsyncSession, scope: Scope, delegation_id: uuid.UUID
    ) -> Delegation:
        """A delegation the caller gave, received or manages; 404 for anyone else's."""
        delegation = await repository.get(session, delegation_id)
        if delegation is None or not (
            scope.principal.sub in (delegation.delegator, delegation.delegate)
            or await self._manages(session, scope, delegation)
        ):
            raise DelegationNotFound(f"No delegation {delegation_id}.")
        return delegation

    async def revoke(self, session: AsyncSession, scope: Scope, delegation_id: uuid.UUID) -> None:
        """End the delegation now; revoking it again changes nothing. Decisions already made
        through it stand. The delegator, or a manager of their district (the central team)."""
        me = scope.principal.sub
        delegation = await repository.get(session, delegation_id, lock=True)
        if delegation is None:
            raise DelegationNotFound(f"No delegation {delegation_id}.")
        manages = await self._manages(session, scope, delegation)
        if not (manages or me in (delegation.delegator, delegation.delegate)):
            raise DelegationNotFound(f"No delegation {delegation_id}.")
        if delegation.delegator != me and not manages:
            raise NotYourDelegation(
                f"Only {delegation.delegator} or a manager of their district may revoke this "
                "delegation."
            )
        if delegation.revoked_at is None:
            delegation.revoked_at = func.now()
            delegation.revoked_by = me
            await session.flush()

    async def narrow_to_current(self, session: AsyncSession, principal: Principal) -> None:
        """Cut the caller's delegations in force or planned down to the grants they hold now
        (a role they lost is no longer delegated); revoke those left with nothing. Most calls
        change nothing and lock nothing; a row to change is locked, in id order, and checked
        again."""

        def kept(grants: dict[str, list[str]]) -> dict[str, list[str]]:
            narrowed = {
                district: sorted(set(roles) & principal.roles_on(district))
                for district, roles in grants.items()
            }
            return {district: roles for district, roles in narrowed.items() if roles}

        current = await repository.list_to_come_of(session, principal.sub)
        stale = [d.id for d in current if kept(d.grants) != d.grants]
        if not stale:
            return
        for delegation in await repository.lock_to_come_of(session, principal.sub, stale):
            grants = kept(delegation.grants)
            if grants:
                delegation.grants = grants
            else:
                delegation.revoked_at = func.now()
                delegation.revoked_by = principal.sub
        await session.flush()

    async def _manages(self, session: AsyncSession, scope: Scope, delegation: Delegation) -> bool:
        if is_central(scope):
            return True
        return await any_district_under(session, list(delegation.grants), scope.manage_paths)

    async def _managed_districts(self, session: AsyncSession, scope: Scope) -> list[str] | None:
        """The districts whose delegations the caller manages: those at or below the ones
        they manage; None for the central team (every delegation)."""
        if is_central(scope):
            return None
        return await list_district_ids_under(session, scope.manage_paths)


delegations = DelegationService()
