"""HTTP endpoints of delegations: out of office, the caller lets someone decide for them for a
period. Anyone with a role may delegate it; the delegator, a manager of their district and the
central team see and revoke it (see the service for the bounds)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from chassis.database import SessionDep
from chassis.districts import ScopeDep
from chassis.errors import problem_responses
from chassis.pagination import InvalidCursor, Page, PageDep
from chassis.principal import PrincipalDep
from services.approvals.delegations.schemas import DelegationCreate, DelegationOut, Direction
from services.approvals.delegations.service import (
    CoverageExceeded,
    DelegationBounds,
    DelegationNotFound,
    NothingToDelegate,
    NotYourDelegation,
    OverlappingDelegation,
    PeriodOver,
    SelfDelegation,
    StartsTooLate,
    delegations,
)
from services.approvals.settings import ApprovalsSettings

router = APIRouter(tags=["delegations"])


def _bounds(request: Request) -> DelegationBounds:
    settings: ApprovalsSettings = request.app.state.settings
    return DelegationBounds(
        max_lead=timedelta(days=settings.delegation_max_lead_days),
        max_coverage=timedelta(days=settings.delegation_max_coverage_days),
    )


BoundsDep = Annotated[DelegationBounds, Depends(_bounds)]


@router.post(
    "/delegations",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(
        SelfDelegation,
        PeriodOver,
        StartsTooLate,
        NothingToDelegate,
        OverlappingDelegation,
        CoverageExceeded,
    ),
)
async def create_delegation(
    data: DelegationCreate, session: SessionDep, principal: PrincipalDep, bounds: BoundsDep
) -> DelegationOut:
    """Delegate your approvals while you are away: from `starts_at` (inclusive) to `ends_at`
    (exclusive), at most 90 days, `delegate` may decide every step you could decide with the
    roles you hold now (they are copied into `grants`, and cut down when you lose a role).
    Their decisions are recorded as theirs, on your behalf; never on content you wrote. Not to
    yourself (422); starting at most `APPROVALS_DELEGATION_MAX_LEAD_DAYS` (90) days from now
    (422); not twice to the same person for overlapping periods (409); all your delegations
    in force or planned cover at most `APPROVALS_DELEGATION_MAX_COVERAGE_DAYS` (90) days
    together (409)."""
    return DelegationOut.model_validate(await delegations.create(session, principal, data, bounds))


@router.get(
    "/delegations",
    responses=problem_responses(InvalidCursor),
)
async def list_delegations(
    session: SessionDep,
    scope: ScopeDep,
    page: PageDep,
    direction: Annotated[
        Direction | None,
        Query(
            description="`given` (you delegate), `received` (you stand in), or `managed` (those "
            "of people in the districts you manage; every one for the central team); given and "
            "received if left out"
        ),
    ] = None,
    include_revoked: Annotated[bool, Query(description="Also list revoked delegations")] = False,
) -> Page[DelegationOut]:
    """Your delegations, given and received (or those you manage), the latest period first
    (past ones included)."""
    return await delegations.list_mine(
        session, scope, page, direction=direction, include_revoked=include_revoked
    )


@router.get(
    "/delegations/{delegation_id}",
    responses=problem_responses(DelegationNotFound),
)
async def get_delegation(
    delegation_id: uuid.UUID, session: SessionDep, scope: ScopeDep
) -> DelegationOut:
    """One delegation you gave, received or manage (a manager of a district in its grants, or
    the central team); 404 for anyone else's."""
    return DelegationOut.model_validate(await delegations.get(session, scope, delegation_id))


@router.delete(
    "/delegations/{delegation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(DelegationNotFound, NotYourDelegation),
)
async def revoke_delegation(
    delegation_id: uuid.UUID, session: SessionDep, scope: ScopeDep
) -> Response:
    """Revoke a delegation you gave, or one you manage (a manager of a district in its grants,
    or the central team): the delegate decides for the delegator no more, from now on.
    Decisions already made through it stand. Revoking it again changes nothing. The delegate
    cannot revoke it (403); anyone else's is 404."""
    await delegations.revoke(session, scope, delegation_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
