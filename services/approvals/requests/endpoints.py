"""Approval requests: reading them, deciding, and "my pending approvals".

Requests are opened by events (a submitted post, a requested account), never by a call. They
are read by anyone holding a role on the subject's district or above it; another district's
request is 404. Deciding needs eligibility on the active step (see the service).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status

from chassis.database import SessionDep
from chassis.districts import DistrictNotFound, ScopeDep
from chassis.errors import problem_responses
from chassis.pagination import InvalidCursor, Page, PageDep
from services.approvals.requests.repository import RequestFilters
from services.approvals.requests.schemas import (
    DecisionCreate,
    DecisionResult,
    HistoryEntry,
    PendingItem,
    RequestOut,
    RequestSummary,
)
from services.approvals.requests.service import (
    AlreadyDecided,
    NotEligible,
    RequestClosed,
    RequestNotFound,
    SelfApproval,
    StepNotActive,
    requests,
)

router = APIRouter(tags=["requests"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="Repeat a decision safely: the same key again returns the first decision",
    ),
]


@router.get(
    "/approvals/pending",
    summary="My pending approvals",
    responses=problem_responses(InvalidCursor),
)
async def my_pending(session: SessionDep, scope: ScopeDep, page: PageDep) -> Page[PendingItem]:
    """The active steps the caller may decide (by their roles, a delegation, or an
    escalation), on requests they did not write and have not decided yet; oldest first."""
    return await requests.pending(session, scope, page)


@router.get(
    "/requests",
    summary="Approval requests",
    responses=problem_responses(DistrictNotFound, InvalidCursor),
)
async def list_requests(
    session: SessionDep,
    scope: ScopeDep,
    page: PageDep,
    status_: Annotated[
        str | None, Query(alias="status", max_length=32, description="open, granted, ...")
    ] = None,
    subject_kind: Annotated[str | None, Query(max_length=32)] = None,
    subject_id: uuid.UUID | None = None,
    district_id: Annotated[
        str | None, Query(max_length=100, description="That district and those below it")
    ] = None,
) -> Page[RequestSummary]:
    """Requests in the districts the caller reads, newest first."""
    filters = RequestFilters(status=status_, subject_kind=subject_kind, subject_id=subject_id)
    return await requests.list_visible(session, scope, page, filters, district_id=district_id)


@router.get(
    "/requests/{request_id}",
    summary="An approval request",
    responses=problem_responses(RequestNotFound),
)
async def get_request(request_id: uuid.UUID, session: SessionDep, scope: ScopeDep) -> RequestOut:
    """The request with the snapshot of what is to be approved, its planned steps (and why
    each is there), and every decision so far."""
    return await requests.get(session, scope, request_id)


@router.get(
    "/requests/{request_id}/history",
    summary="A request's full history",
    responses=problem_responses(RequestNotFound, InvalidCursor),
)
async def request_history(
    request_id: uuid.UUID, session: SessionDep, scope: ScopeDep, page: PageDep
) -> Page[HistoryEntry]:
    """Everything that happened to the request, oldest first; it is never rewritten."""
    return await requests.history(session, scope, request_id, page)


@router.post(
    "/requests/{request_id}/decisions",
    status_code=status.HTTP_201_CREATED,
    summary="Decide a step",
    responses={
        200: {"description": "The same idempotency key again: the first decision, unchanged"},
        **problem_responses(
            RequestNotFound,
            NotEligible,
            SelfApproval,
            RequestClosed,
            StepNotActive,
            AlreadyDecided,
        ),
    },
)
async def decide(
    request_id: uuid.UUID,
    data: DecisionCreate,
    session: SessionDep,
    scope: ScopeDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> DecisionResult:
    """Approve, reject or request changes on the active step, with a comment (required to
    reject or request changes). Only an eligible approver decides: the step's role on the
    step's district or above it, a delegate of such a person, or after escalation the
    escalation target; the author never decides on their own content."""
    result, new = await requests.decide(
        session,
        scope,
        request_id,
        outcome=data.outcome,
        comment=data.comment,
        idempotency_key=idempotency_key,
        position=data.position,
    )
    if not new:
        response.status_code = status.HTTP_200_OK
    return result
