from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from chassis.database import SessionDep
from chassis.districts import DistrictNotFound, ScopeDep
from chassis.errors import Forbidden, problem_responses
from chassis.pagination import InvalidCursor, Page, PageDep
from chassis.query import CommaSeparated
from services.inventory.accounts.service import AccountExists
from services.inventory.districts.endpoints import DistrictFilter
from services.inventory.platforms import (
    InvalidHandle,
    InvalidProfileUrl,
    PlatformMismatch,
    UnknownPlatform,
)
from services.inventory.requests.schemas import (
    AccountRequestCreate,
    AccountRequestOut,
)
from services.inventory.requests.service import (
    AccountRequestClosed,
    AccountRequestExists,
    AccountRequestNotFound,
    account_requests,
)
from services.inventory.vocabulary import RequestStatus

router = APIRouter(prefix="/account-requests", tags=["account requests"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(
        AccountExists,
        AccountRequestExists,
        UnknownPlatform,
        InvalidHandle,
        InvalidProfileUrl,
        PlatformMismatch,
        DistrictNotFound,
        Forbidden,
    ),
)
async def request_account(
    data: AccountRequestCreate, session: SessionDep, scope: ScopeDep
) -> AccountRequestOut:
    """Ask for a new official account for a district (contributors and managers of it). The
    request goes to approvals (`account.requested`); a grant makes the account official. An
    account or an open request for the same platform and handle is a 409 naming it."""
    return await account_requests.create(session, scope, data)


@router.get(
    "",
    responses=problem_responses(InvalidCursor, DistrictNotFound),
)
async def list_account_requests(
    session: SessionDep,
    scope: ScopeDep,
    page: PageDep,
    status_: Annotated[
        CommaSeparated[RequestStatus] | None,
        Query(alias="status", max_length=4, description="Requests in any of these statuses"),
    ] = None,
    district_id: DistrictFilter = None,
) -> Page[AccountRequestOut]:
    """The requests of the districts the caller can see, newest first."""
    return await account_requests.list_visible(
        session, scope, page, statuses=tuple(status_ or ()), district_id=district_id
    )


@router.get(
    "/{request_id}",
    responses=problem_responses(AccountRequestNotFound),
)
async def get_account_request(
    request_id: uuid.UUID, session: SessionDep, scope: ScopeDep
) -> AccountRequestOut:
    """One request the caller can see, with its decision once decided."""
    return await account_requests.read(session, scope, request_id)


@router.post(
    "/{request_id}/cancel",
    responses=problem_responses(AccountRequestNotFound, AccountRequestClosed, Forbidden),
)
async def cancel_account_request(
    request_id: uuid.UUID, session: SessionDep, scope: ScopeDep
) -> AccountRequestOut:
    """Withdraw an open request (its requester, or a manager of its district). Published as
    `account.request_closed` so approvals can drop it."""
    return await account_requests.cancel(session, scope, request_id)
