from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from chassis.database import SessionDep
from chassis.errors import Forbidden, problem_responses
from chassis.pagination import InvalidCursor, Page, PageDep, cursor_key, encode_cursor
from chassis.principal import PrincipalDep
from services.inventory import audit
from services.inventory.access import scope_of
from services.inventory.accounts import repository
from services.inventory.accounts.schemas import (
    AccountCreate,
    AccountOut,
    AccountUpdate,
    AuditEntryOut,
    PresenceSummary,
    Status,
    StatusChange,
    SummaryRow,
)
from services.inventory.accounts.service import (
    AccountExists,
    AccountNotFound,
    IllegalTransition,
    InvalidDuplicate,
    accounts,
)
from services.inventory.districts.schemas import DISTRICT_ID_PATTERN
from services.inventory.districts.service import DistrictNotFound, districts
from services.inventory.platforms import (
    InvalidHandle,
    InvalidProfileUrl,
    PlatformMismatch,
    UnknownPlatform,
    load_registry,
)

router = APIRouter(prefix="/accounts", tags=["accounts"])

DistrictFilter = Annotated[
    str | None,
    Query(pattern=DISTRICT_ID_PATTERN, description="This district and everything below it"),
]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=AccountOut,
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
async def register_account(
    data: AccountCreate, session: SessionDep, principal: PrincipalDep
) -> AccountOut:
    """Register an account by platform and handle, or by its profile URL. A second account with
    the same platform and handle is refused (409) with the existing one's id."""
    scope = await scope_of(session, principal)
    registry = await load_registry(session)
    account = await accounts.register(session, scope, registry, data)
    return (await accounts.out(session, [account]))[0]


@router.get("", response_model=Page[AccountOut], responses=problem_responses(InvalidCursor))
async def list_accounts(
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    district: DistrictFilter = None,
    platform: Annotated[str | None, Query(max_length=50)] = None,
    status_: Annotated[list[Status] | None, Query(alias="status")] = None,
    owner: Annotated[str | None, Query(max_length=200)] = None,
    flagged: bool | None = None,
    tag: Annotated[str | None, Query(max_length=50)] = None,
    q: Annotated[
        str | None, Query(min_length=2, max_length=100, description="Handle or display name")
    ] = None,
) -> Page[AccountOut]:
    """Accounts the caller can see, filtered, in (platform, handle) order."""
    scope = await scope_of(session, principal)
    district_path = None
    if district is not None:
        district_path = (await districts.get_visible(session, scope, district)).path
    after = None
    if page.after is not None:
        after = cursor_key(page.after, str, str)
    filters = repository.AccountFilters(
        platform=platform.lower() if platform else None,
        statuses=tuple(status_ or ()),
        owner=owner,
        flagged=flagged,
        tag=tag,
        text=q,
    )
    rows = await repository.search(
        session, scope, filters, after=after, limit=page.limit + 1, district_path=district_path
    )
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return Page(
        items=await accounts.out(session, rows),
        next_cursor=encode_cursor([rows[-1].platform, rows[-1].handle_key]) if more else None,
    )


@router.get("/summary", response_model=PresenceSummary)
async def presence_summary(
    session: SessionDep, principal: PrincipalDep, district: DistrictFilter = None
) -> PresenceSummary:
    """Counts of the visible presence per district, platform and status."""
    scope = await scope_of(session, principal)
    district_path = None
    if district is not None:
        district_path = (await districts.get_visible(session, scope, district)).path
    rows = await repository.summary(session, scope, district_path) if scope.read_paths else []
    by_status: dict[str, int] = {}
    by_platform: dict[str, int] = {}
    by_district: dict[str, int] = {}
    for district_id, platform, state, count in rows:
        by_status[state] = by_status.get(state, 0) + count
        by_platform[platform] = by_platform.get(platform, 0) + count
        by_district[district_id] = by_district.get(district_id, 0) + count
    return PresenceSummary(
        total=sum(by_status.values()),
        by_status=by_status,
        by_platform=by_platform,
        by_district=by_district,
        rows=[SummaryRow(district_id=d, platform=p, status=s, count=n) for d, p, s, n in rows],
    )


@router.get(
    "/{account_id}", response_model=AccountOut, responses=problem_responses(AccountNotFound)
)
async def get_account(
    account_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> AccountOut:
    """One account, with its owners and open flags."""
    scope = await scope_of(session, principal)
    account, _ = await accounts.get_visible(session, scope, account_id)
    return (await accounts.out(session, [account]))[0]


@router.patch(
    "/{account_id}",
    response_model=AccountOut,
    responses=problem_responses(AccountNotFound, DistrictNotFound, Forbidden),
)
async def update_account(
    account_id: uuid.UUID, data: AccountUpdate, session: SessionDep, principal: PrincipalDep
) -> AccountOut:
    """Change an account's details, owners (the list is replaced) or district."""
    scope = await scope_of(session, principal)
    account = await accounts.update(session, scope, account_id, data)
    return (await accounts.out(session, [account]))[0]


@router.post(
    "/{account_id}/status",
    response_model=AccountOut,
    responses=problem_responses(AccountNotFound, IllegalTransition, InvalidDuplicate, Forbidden),
)
async def change_status(
    account_id: uuid.UUID, data: StatusChange, session: SessionDep, principal: PrincipalDep
) -> AccountOut:
    """Move the account to another status; only allowed transitions (the 422 lists them)."""
    scope = await scope_of(session, principal)
    account = await accounts.change_status(session, scope, account_id, data)
    return (await accounts.out(session, [account]))[0]


@router.get(
    "/{account_id}/audit",
    response_model=Page[AuditEntryOut],
    responses=problem_responses(AccountNotFound, InvalidCursor),
)
async def account_audit(
    account_id: uuid.UUID, session: SessionDep, principal: PrincipalDep, page: PageDep
) -> Page[AuditEntryOut]:
    """Every change to the account, oldest first: who, when, what."""
    scope = await scope_of(session, principal)
    await accounts.get_visible(session, scope, account_id)
    after_id = 0
    if page.after is not None:
        (after_id,) = cursor_key(page.after, int)
    rows = await audit.entries(
        session, "account", account_id, after_id=after_id, limit=page.limit + 1
    )
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return Page(
        items=[AuditEntryOut.model_validate(r) for r in rows],
        next_cursor=encode_cursor([rows[-1].id]) if more else None,
    )
