"""HTTP endpoints of delegations: out of office, the caller lets someone decide for them for a
period. Anyone with a role may delegate it; only the delegator revokes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from chassis.database import SessionDep
from chassis.errors import problem_responses
from chassis.pagination import InvalidCursor, Page, PageDep, encode_cursor
from chassis.principal import PrincipalDep
from services.approvals.delegations.schemas import DelegationCreate, DelegationOut
from services.approvals.delegations.service import (
    DelegationNotFound,
    Direction,
    NothingToDelegate,
    NotYourDelegation,
    OverlappingDelegation,
    PeriodOver,
    SelfDelegation,
    delegations,
)

router = APIRouter(tags=["delegations"])


@router.post(
    "/delegations",
    status_code=status.HTTP_201_CREATED,
    response_model=DelegationOut,
    responses=problem_responses(
        SelfDelegation, PeriodOver, NothingToDelegate, OverlappingDelegation
    ),
)
async def create_delegation(
    data: DelegationCreate, session: SessionDep, principal: PrincipalDep
) -> DelegationOut:
    """Delegate your approvals while you are away: from `starts_at` (inclusive) to `ends_at`
    (exclusive), at most 90 days, `delegate` may decide every step you could decide with the
    roles you hold now (they are copied into `grants`). Their decisions are recorded as theirs,
    on your behalf. Not to yourself (422); not twice to the same person for overlapping
    periods (409)."""
    return DelegationOut.model_validate(await delegations.create(session, principal, data))


@router.get(
    "/delegations",
    response_model=Page[DelegationOut],
    responses=problem_responses(InvalidCursor),
)
async def list_delegations(
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    direction: Annotated[
        Direction | None,
        Query(description="`given` (you delegate) or `received` (you stand in); both if left out"),
    ] = None,
    include_revoked: Annotated[bool, Query(description="Also list revoked delegations")] = False,
) -> Page[DelegationOut]:
    """Your delegations, given and received, the latest period first (past ones included)."""
    items, last = await delegations.list_mine(
        session, principal, page, direction=direction, include_revoked=include_revoked
    )
    return Page(items=items, next_cursor=encode_cursor(last) if last else None)


@router.get(
    "/delegations/{delegation_id}",
    response_model=DelegationOut,
    responses=problem_responses(DelegationNotFound),
)
async def get_delegation(
    delegation_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> DelegationOut:
    """One delegation you gave or received; 404 for anyone else's."""
    return DelegationOut.model_validate(await delegations.get(session, principal, delegation_id))


@router.delete(
    "/delegations/{delegation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(DelegationNotFound, NotYourDelegation),
)
async def revoke_delegation(
    delegation_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> Response:
    """Revoke a delegation you gave: your delegate decides for you no more, from now on.
    Decisions already made through it stand. Revoking it again changes nothing. The delegate
    cannot revoke it (403); anyone else's is 404."""
    await delegations.revoke(session, principal, delegation_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
