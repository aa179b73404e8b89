from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from chassis.database import SessionDep
from chassis.errors import Forbidden, problem_responses
from chassis.pagination import InvalidCursor, Page, PageDep, cursor_key, encode_cursor
from chassis.principal import PrincipalDep
from services.inventory.access import scope_of
from services.inventory.accounts.service import AccountExists
from services.inventory.districts.schemas import DISTRICT_ID_PATTERN
from services.inventory.districts.service import DistrictNotFound
from services.inventory.platforms import (
    InvalidHandle,
    InvalidProfileUrl,
    PlatformMismatch,
    UnknownPlatform,
    load_registry,
)
from services.inventory.requests.schemas import (
    AccountRequestCreate,
    AccountRequestOut,
    RequestStatus,
)
from services.inventory.requests.service import (
    AccountRequestClosed,
    AccountRequestExists,
    AccountRequestNotFound,
    account_requests,
)

router = APIRouter(prefix="/account-requests", tags=["account requests"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=AccountRequestOut,
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
    data: AccountRequestCreate, session: SessionDep, principal: PrincipalDep
) -> AccountRequestOut:
    """Ask for a new official account for a district (contributors and managers of it). The
    request goes to approvals (`account.requested`); a grant makes the account official. An
    account or an open request for the same platform and handle is a 409 naming it."""
    scope = await scope_of(session, principal)
    registry = await load_registry(session)
    request = await account_requests.create(session, scope, registry, data)
    return AccountRequestOut.model_validate(request)


@router.get(
    "",
    response_model=Page[AccountRequestOut],
    responses=problem_responses(InvalidCursor, DistrictNotFound),
)
async def list_account_requests(
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    status_: Annotated[list[RequestStatus] | None, Query(alias="status", max_length=4)] = None,
    district: Annotated[
        str | None,
        Query(pattern=DISTRICT_ID_PATTERN, description="This district and everything below it"),
    ] = None,
) -> Page[AccountRequestOut]:
    """The requests of the districts the caller can see, newest first."""
    scope = await scope_of(session, principal)
    after = None
    if page.after is not None:
        after = _decode_after(page.after)
    rows = await account_requests.list_visible(
        session, scope, page, statuses=tuple(status_ or ()), district_id=district, after=after
    )
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return Page(
        items=[AccountRequestOut.model_validate(r) for r in rows],
        next_cursor=(
            encode_cursor([rows[-1].created_at.isoformat(), str(rows[-1].id)]) if more else None
        ),
    )


def _decode_after(key: list[Any]) -> tuple[datetime, uuid.UUID]:
    return cursor_key(key, datetime, uuid.UUID)


@router.get(
    "/{request_id}",
    response_model=AccountRequestOut,
    responses=problem_responses(AccountRequestNotFound),
)
async def get_account_request(
    request_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> AccountRequestOut:
    """One request the caller can see, with its decision once decided."""
    scope = await scope_of(session, principal)
    request, _ = await account_requests.get_visible(session, scope, request_id)
    return AccountRequestOut.model_validate(request)


@router.post(
    "/{request_id}/cancel",
    response_model=AccountRequestOut,
    responses=problem_responses(AccountRequestNotFound, AccountRequestClosed, Forbidden),
)
async def cancel_account_request(
    request_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> AccountRequestOut:
    """Withdraw an open request (its requester, or a manager of its district). Published as
    `account.request_closed` so approvals can drop it."""
    scope = await scope_of(session, principal)
    request = await account_requests.cancel(session, scope, request_id)
    return AccountRequestOut.model_validate(request)
