"""Approval requests: reading them, deciding, and "my pending approvals".

Requests are opened by events (a submitted post, a requested account), never by a call. They
are read by anyone holding a role on the subject's district or above it; another district's
request is 404. Deciding needs eligibility on the active step (see the service).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status
from sqlalchemy import select, tuple_

from chassis.database import SessionDep
from chassis.errors import problem_responses
from chassis.pagination import InvalidCursor, Page, PageDep, cursor_key, encode_cursor
from chassis.principal import PrincipalDep
from services.approvals.access import DistrictNotFound, district_path, scope_of, tree
from services.approvals.models import ApprovalRequest
from services.approvals.requests.schemas import (
    AdvisoryAnswerOut,
    DecisionCreate,
    DecisionOut,
    DecisionResult,
    HistoryEntry,
    PendingItem,
    RequestOut,
    RequestSummary,
    StepOut,
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


async def _out(session: SessionDep, request: ApprovalRequest) -> RequestOut:
    steps = await requests.steps(session, request.id)
    decisions = await requests.decisions(session, request.id)
    advice = await requests.advisory_answers(session, request.id)
    return RequestOut.model_validate(
        {
            **RequestSummary.model_validate(request).model_dump(),
            "snapshot": request.snapshot,
            "policy_versions": request.policy_versions,
            "steps": [StepOut.model_validate(s) for s in steps],
            "decisions": [DecisionOut.model_validate(d) for d in decisions],
            "advisory_answers": [AdvisoryAnswerOut.model_validate(a) for a in advice],
        }
    )


@router.get(
    "/approvals/pending",
    response_model=Page[PendingItem],
    summary="My pending approvals",
    responses=problem_responses(InvalidCursor),
)
async def my_pending(
    session: SessionDep, principal: PrincipalDep, page: PageDep
) -> Page[PendingItem]:
    """The active steps the caller may decide (by their roles, a delegation, or an
    escalation), on requests they did not write and have not decided yet; oldest first."""
    scope = await scope_of(session, principal)
    after = cursor_key(page.after, datetime, uuid.UUID) if page.after else None
    rows = await requests.pending(session, principal, scope, after=after, limit=page.limit + 1)
    items = [
        PendingItem(
            request=RequestSummary.model_validate(request), step=StepOut.model_validate(step)
        )
        for step, request in rows[: page.limit]
    ]
    cursor = None
    if len(rows) > page.limit:
        last = rows[page.limit - 1][1]
        cursor = encode_cursor([last.opened_at.isoformat(), str(last.id)])
    return Page(items=items, next_cursor=cursor)


@router.get(
    "/requests",
    response_model=Page[RequestSummary],
    summary="Approval requests",
    responses=problem_responses(DistrictNotFound, InvalidCursor),
)
async def list_requests(
    session: SessionDep,
    principal: PrincipalDep,
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
    scope = await scope_of(session, principal)
    query = select(ApprovalRequest).where(tree.visible(ApprovalRequest.district_id, scope))
    if district_id is not None:
        path = await district_path(session, scope, district_id)
        query = query.where(tree.in_subtree(ApprovalRequest.district_id, path))
    if status_ is not None:
        query = query.where(ApprovalRequest.status == status_)
    if subject_kind is not None:
        query = query.where(ApprovalRequest.subject_kind == subject_kind)
    if subject_id is not None:
        query = query.where(ApprovalRequest.subject_id == subject_id)
    if page.after is not None:
        opened_at, last_id = cursor_key(page.after, datetime, uuid.UUID)
        query = query.where(
            tuple_(ApprovalRequest.opened_at, ApprovalRequest.id) < (opened_at, last_id)
        )
    rows = list(
        await session.scalars(
            query.order_by(ApprovalRequest.opened_at.desc(), ApprovalRequest.id.desc()).limit(
                page.limit + 1
            )
        )
    )
    items = [RequestSummary.model_validate(r) for r in rows[: page.limit]]
    cursor = None
    if len(rows) > page.limit:
        last = rows[page.limit - 1]
        cursor = encode_cursor([last.opened_at.isoformat(), str(last.id)])
    return Page(items=items, next_cursor=cursor)


@router.get(
    "/requests/{request_id}",
    response_model=RequestOut,
    summary="An approval request",
    responses=problem_responses(RequestNotFound),
)
async def get_request(
    request_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> RequestOut:
    """The request with the snapshot of what is to be approved, its planned steps (and why
    each is there), and every decision so far."""
    scope = await scope_of(session, principal)
    return await _out(session, await requests.get_visible(session, scope, request_id))


@router.get(
    "/requests/{request_id}/history",
    response_model=Page[HistoryEntry],
    summary="A request's full history",
    responses=problem_responses(RequestNotFound, InvalidCursor),
)
async def request_history(
    request_id: uuid.UUID, session: SessionDep, principal: PrincipalDep, page: PageDep
) -> Page[HistoryEntry]:
    """Everything that happened to the request, oldest first; it is never rewritten."""
    scope = await scope_of(session, principal)
    await requests.get_visible(session, scope, request_id)
    (after,) = cursor_key(page.after, int) if page.after else (0,)
    rows = await requests.history(session, request_id, after=after, limit=page.limit + 1)
    items = [HistoryEntry.model_validate(r) for r in rows[: page.limit]]
    cursor = encode_cursor([rows[page.limit - 1].id]) if len(rows) > page.limit else None
    return Page(items=items, next_cursor=cursor)


@router.post(
    "/requests/{request_id}/decisions",
    response_model=DecisionResult,
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
    principal: PrincipalDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> DecisionResult:
    """Approve, reject or request changes on the active step, with a comment (required to
    reject or request changes). Only an eligible approver decides: the step's role on the
    step's district or above it, a delegate of such a person, or after escalation the
    escalation target; the author never decides on their own content."""
    decision, new = await requests.decide(
        session,
        principal,
        request_id,
        outcome=data.outcome,
        comment=data.comment,
        idempotency_key=idempotency_key,
        position=data.position,
    )
    if not new:
        response.status_code = status.HTTP_200_OK
    request = await session.get(ApprovalRequest, request_id)
    assert request is not None
    return DecisionResult(
        decision=DecisionOut.model_validate(decision), request=await _out(session, request)
    )
