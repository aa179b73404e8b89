from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from chassis.database import SessionDep
from chassis.districts import DistrictNotFound, ScopeDep
from chassis.errors import Forbidden, problem_responses
from chassis.pagination import InvalidCursor, Page, PageDep
from services.inventory.accounts.schemas import (
    AccountCreate,
    AccountFilters,
    AccountOut,
    AccountUpdate,
    AuditEntryOut,
    PresenceSummary,
    StatusChange,
)
from services.inventory.accounts.service import (
    AccountExists,
    AccountNotFound,
    IllegalTransition,
    InvalidDuplicate,
    accounts,
)
from services.inventory.districts.endpoints import DistrictFilter
from services.inventory.platforms import (
    InvalidHandle,
    InvalidProfileUrl,
    PlatformMismatch,
    UnknownPlatform,
)

router = APIRouter(prefix="/accounts", tags=["accounts"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(
        AccountExists,
        UnknownPlatform,
        InvalidHandle,
        InvalidProfileUrl,
        PlatformMismatch,
        InvalidDuplicate,
        DistrictNotFound,
        Forbidden,
    ),
)
async def register_account(data: AccountCreate, session: SessionDep, scope: ScopeDep) -> AccountOut:
    """Register an account by platform and handle, or by its profile URL. A second account with
    the same platform and handle is refused (409) with the existing one's id."""
    return await accounts.create(session, scope, data)


@router.get("", responses=problem_responses(InvalidCursor))
async def list_accounts(
    session: SessionDep,
    scope: ScopeDep,
    page: PageDep,
    filters: Annotated[AccountFilters, Query()],
) -> Page[AccountOut]:
    """Accounts the caller can see, filtered, in (platform, handle) order."""
    return await accounts.list_visible(session, scope, page, filters)


@router.get("/summary")
async def presence_summary(
    session: SessionDep, scope: ScopeDep, district_id: DistrictFilter = None
) -> PresenceSummary:
    """Counts of the visible presence per district, platform and status."""
    return await accounts.summary(session, scope, district_id)


@router.get("/{account_id}", responses=problem_responses(AccountNotFound))
async def get_account(account_id: uuid.UUID, session: SessionDep, scope: ScopeDep) -> AccountOut:
    """One account, with its owners and open flags."""
    return await accounts.read(session, scope, account_id)


@router.patch(
    "/{account_id}",
    responses=problem_responses(AccountNotFound, DistrictNotFound, Forbidden),
)
async def update_account(
    account_id: uuid.UUID, data: AccountUpdate, session: SessionDep, scope: ScopeDep
) -> AccountOut:
    """Change an account's details, owners (the list is replaced) or district."""
    return await accounts.update(session, scope, account_id, data)


@router.post(
    "/{account_id}/status",
    responses=problem_responses(AccountNotFound, IllegalTransition, InvalidDuplicate, Forbidden),
)
async def change_status(
    account_id: uuid.UUID, data: StatusChange, session: SessionDep, scope: ScopeDep
) -> AccountOut:
    """Move the account to another status; only allowed transitions (the 422 lists them)."""
    return await accounts.change_status(session, scope, account_id, data)


@router.get(
    "/{account_id}/audit",
    responses=problem_responses(AccountNotFound, InvalidCursor),
)
async def account_audit(
    account_id: uuid.UUID, session: SessionDep, scope: ScopeDep, page: PageDep
) -> Page[AuditEntryOut]:
    """Every change to the account, oldest first: who, when, what."""
    return await accounts.audit_trail(session, scope, account_id, page)
