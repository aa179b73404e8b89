"""Found pages and takedown cases. Reading needs any role on the case's district; reporting,
opening, moving and annotating need a manager role there. Another district's case is 404."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from chassis.database import SessionDep
from chassis.districts import DistrictNotFound, ScopeDep
from chassis.errors import Forbidden, problem_responses
from chassis.pagination import InvalidCursor, Page, PageDep
from chassis.query import CommaSeparated
from services.inventory.accounts.service import AccountNotFound
from services.inventory.districts.endpoints import DistrictFilter
from services.inventory.platforms import InvalidHandle, InvalidProfileUrl
from services.inventory.takedowns.schemas import (
    FoundPageOut,
    FoundPageReport,
    NoteCreate,
    TakedownDetail,
    TakedownOpen,
    TakedownOut,
    TakedownTransition,
    TimelineEntry,
)
from services.inventory.takedowns.service import (
    IllegalTakedownTransition,
    NotAFoundPage,
    PageAlreadyRegistered,
    PlatformReferenceRequired,
    TakedownNotFound,
    TakedownUnderWay,
    TimelineFull,
    takedowns,
)
from services.inventory.vocabulary import TakedownStatus

router = APIRouter(tags=["takedowns"])


@router.post(
    "/found-pages",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(
        InvalidProfileUrl,
        InvalidHandle,
        DistrictNotFound,
        Forbidden,
        PageAlreadyRegistered,
        TakedownUnderWay,
    ),
)
async def report_found_page(
    data: FoundPageReport, session: SessionDep, scope: ScopeDep
) -> FoundPageOut:
    """Report an unofficial, rogue or fan page by its profile URL, with evidence.

    A page not yet in the inventory is registered in `district_id` with the classification as
    its status. A page already registered (and visible to the caller) is used instead: it moves
    to the classification if its status allows (409 naming it otherwise), and its case lives
    in the account's own district. A takedown case is opened unless `open_case` is false (409
    if one is already under way). Needs a manager role on the district."""
    return await takedowns.report(session, scope, data)


@router.post(
    "/accounts/{account_id}/takedowns",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(AccountNotFound, Forbidden, NotAFoundPage, TakedownUnderWay),
)
async def open_takedown(
    account_id: uuid.UUID, data: TakedownOpen, session: SessionDep, scope: ScopeDep
) -> TakedownDetail:
    """Open a takedown case on an account already in the inventory. Only rogue, fan,
    unofficial and duplicate accounts qualify (422 otherwise); an account has at most one case
    under way (409 naming it)."""
    return await takedowns.open_for_account(session, scope, account_id, data)


@router.get(
    "/takedowns",
    responses=problem_responses(InvalidCursor, DistrictNotFound),
)
async def list_takedowns(
    session: SessionDep,
    scope: ScopeDep,
    page: PageDep,
    status_: Annotated[
        CommaSeparated[TakedownStatus] | None,
        Query(alias="status", max_length=6, description="Cases in any of these statuses"),
    ] = None,
    district_id: DistrictFilter = None,
    account_id: uuid.UUID | None = None,
) -> Page[TakedownOut]:
    """The takedown cases the caller can see, newest first (without their timelines)."""
    return await takedowns.list_visible(
        session,
        scope,
        page,
        statuses=tuple(status_ or ()),
        district_id=district_id,
        account_id=account_id,
    )


@router.get(
    "/takedowns/{case_id}",
    responses=problem_responses(TakedownNotFound),
)
async def get_takedown(case_id: uuid.UUID, session: SessionDep, scope: ScopeDep) -> TakedownDetail:
    """One takedown case with its timeline of status changes and notes, oldest first."""
    return await takedowns.get(session, scope, case_id)


@router.post(
    "/takedowns/{case_id}/transitions",
    responses=problem_responses(
        TakedownNotFound,
        Forbidden,
        IllegalTakedownTransition,
        PlatformReferenceRequired,
        AccountNotFound,
    ),
)
async def transition_takedown(
    case_id: uuid.UUID, data: TakedownTransition, session: SessionDep, scope: ScopeDep
) -> TakedownDetail:
    """Move the case on, with a note for the timeline. Allowed: open -> reported, escalated,
    kept; reported -> escalated, removed, kept, transferred; escalated -> reported, removed,
    kept, transferred; removed, kept and transferred are final (the 422 lists what is allowed).
    Moving to reported needs the platform's reference. On removed the account is archived, on
    transferred it becomes official, where the account's own status transitions allow."""
    return await takedowns.transition(session, scope, case_id, data)


@router.post(
    "/takedowns/{case_id}/notes",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(TakedownNotFound, Forbidden, TimelineFull),
)
async def add_takedown_note(
    case_id: uuid.UUID, data: NoteCreate, session: SessionDep, scope: ScopeDep
) -> TimelineEntry:
    """Add a note to the case's timeline (audited; no event, since nothing changes state)."""
    return await takedowns.add_note(session, scope, case_id, data.text)
