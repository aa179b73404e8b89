"""Every query of approval requests, their steps, decisions and history."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.pagination import PageRequest, keyset_slice, page_of
from services.approvals.models import (
    ApprovalRequest,
    Decision,
    RequestHistory,
    RequestStep,
    ReviewInvite,
)
from services.approvals.vocabulary import OutsideReviewMode, RequestStatus, StepStatus


@dataclass(frozen=True)
class RequestFilters:
    status: str | None = None
    subject_kind: str | None = None
    subject_id: uuid.UUID | None = None


@dataclass(frozen=True)
class RoleReach:
    """Where someone decides by a role: the role, the ids of the districts it covers, and the
    author whose requests it does not reach (a delegate never decides the delegator's own)."""

    role: str
    district_ids: Sequence[str]
    not_by: str | None = None
    # Granted itself (not only included by another role): reaches steps asking for it exactly.
    granted: bool = True


# Reading ----------------------------------------------------------------------------------


async def get_request(session: AsyncSession, request_id: uuid.UUID) -> ApprovalRequest | None:
    return await session.get(ApprovalRequest, request_id)


async def lock_request(session: AsyncSession, request_id: uuid.UUID) -> ApprovalRequest | None:
    """The request, its row locked until the transaction ends."""
    found: ApprovalRequest | None = await session.scalar(
        select(ApprovalRequest).where(ApprovalRequest.id == request_id).with_for_update()
    )
    return found


async def relock_request(session: AsyncSession, request: ApprovalRequest) -> None:
    """Take the request's row lock and read it again: what a concurrent decider committed
    before is then seen."""
    await session.execute(
        select(ApprovalRequest.id).where(ApprovalRequest.id == request.id).with_for_update()
    )
    await session.refresh(request)


async def find_by_source_event(
    session: AsyncSession, source_event_id: uuid.UUID
) -> ApprovalRequest | None:
    found: ApprovalRequest | None = await session.scalar(
        select(ApprovalRequest).where(ApprovalRequest.source_event_id == source_event_id)
    )
    return found


async def find_open_for_subject(
    session: AsyncSession, subject_kind: str, subject_id: uuid.UUID, *, lock: bool
) -> ApprovalRequest | None:
    query = select(ApprovalRequest).where(
        ApprovalRequest.subject_kind == subject_kind,
        ApprovalRequest.subject_id == subject_id,
        ApprovalRequest.status == RequestStatus.OPEN,
    )
    if lock:
        query = query.with_for_update()
    found: ApprovalRequest | None = await session.scalar(query)
    return found


async def list_requests(
    session: AsyncSession,
    visible: ColumnElement[bool],
    filters: RequestFilters,
    *,
    subtree: ColumnElement[bool] | None,
    page: PageRequest,
) -> list[ApprovalRequest]:
    """The requests matching `visible`, `subtree` and the filters, newest first."""
    query = select(ApprovalRequest).where(visible)
    if subtree is not None:
        query = query.where(subtree)
    if filters.status is not None:
        query = query.where(ApprovalRequest.status == filters.status)
    if filters.subject_kind is not None:
        query = query.where(ApprovalRequest.subject_kind == filters.subject_kind)
    if filters.subject_id is not None:
        query = query.where(ApprovalRequest.subject_id == filters.subject_id)
    query = page_of(query, ApprovalRequest.opened_at, ApprovalRequest.id, page, descending=True)
    return list(await session.scalars(query))


async def get_step(
    session: AsyncSession, request_id: uuid.UUID, position: int, *, lock: bool = False
) -> RequestStep | None:
    return await session.get(RequestStep, (request_id, position), with_for_update=lock)


async def list_steps(session: AsyncSession, request_id: uuid.UUID) -> list[RequestStep]:
    rows = await session.scalars(
        select(RequestStep)
        .where(RequestStep.request_id == request_id)
        .order_by(RequestStep.position)
    )
    return list(rows)


async def list_decisions(session: AsyncSession, request_id: uuid.UUID) -> list[Decision]:
    rows = await session.scalars(
        select(Decision).where(Decision.request_id == request_id).order_by(Decision.id)
    )
    return list(rows)


async def find_decision_by_key(
    session: AsyncSession, request_id: uuid.UUID, decider: str, idempotency_key: str
) -> Decision | None:
    found: Decision | None = await session.scalar(
        select(Decision).where(
            Decision.request_id == request_id,
            Decision.decider == decider,
            Decision.idempotency_key == idempotency_key,
        )
    )
    return found


async def list_advisory_answers(session: AsyncSession, request_id: uuid.UUID) -> list[ReviewInvite]:
    """The answers given on the request's advisory steps, oldest first."""
    rows = await session.scalars(
        select(ReviewInvite)
        .join(
            RequestStep,
            and_(
                RequestStep.request_id == ReviewInvite.request_id,
                RequestStep.position == ReviewInvite.position,
            ),
        )
        .where(
            ReviewInvite.request_id == request_id,
            ReviewInvite.outcome.is_not(None),
            RequestStep.outside_review == OutsideReviewMode.ADVISORY,
        )
        .order_by(ReviewInvite.used_at, ReviewInvite.id)
    )
    return list(rows)


async def list_history(
    session: AsyncSession, request_id: uuid.UUID, page: PageRequest
) -> list[RequestHistory]:
    """The request's history in the order it happened (the log's own serial)."""
    query = select(RequestHistory).where(RequestHistory.request_id == request_id)
    query = keyset_slice(query, (RequestHistory.id,), after=page.after_key(int), limit=page.fetch)
    return list(await session.scalars(query))


# Writing ----------------------------------------------------------------------------------


async def close_open_steps(session: AsyncSession, request_id: uuid.UUID, status: str) -> None:
    """The request's steps still waiting or active take `status`."""
    await session.execute(
        update(RequestStep)
        .where(
            RequestStep.request_id == request_id,
            RequestStep.status.in_((StepStatus.WAITING, StepStatus.ACTIVE)),
        )
        .values(status=status)
    )


# "My pending approvals" -----------------------------------------------------------------


async def list_pending(
    session: AsyncSession,
    decider: str,
    reaches: Sequence[RoleReach],
    *,
    page: PageRequest,
) -> list[tuple[RequestStep, ApprovalRequest]]:
    """Active steps of a role in `reaches` (held on the step's district, or on its escalation
    target once escalated), on requests `decider` did not write and has not decided yet;
    oldest request first. The partial indexes on active steps (role, district) find the
    candidates without reading the tree per row."""
    conditions: list[ColumnElement[bool]] = []
    for reach in reaches:
        not_theirs = true() if reach.not_by is None else RequestStep.request_author != reach.not_by
        ids = list(reach.district_ids)
        exact_ok = true() if reach.granted else RequestStep.exact_role.is_(False)
        conditions.append(
            and_(
                RequestStep.role == reach.role,
                RequestStep.district_id.in_(ids),
                not_theirs,
                exact_ok,
            )
        )
        conditions.append(
            and_(
                RequestStep.escalated_at.is_not(None),
                RequestStep.escalate_to_role == reach.role,
                RequestStep.escalate_to_district_id.in_(ids),
                not_theirs,
            )
        )
    query = select(RequestStep).where(
        RequestStep.status == StepStatus.ACTIVE,
        or_(*conditions) if conditions else false(),
        RequestStep.request_author != decider,
        ~exists().where(
            Decision.request_id == RequestStep.request_id,
            Decision.position == RequestStep.position,
            Decision.decider == decider,
        ),
    )
    query = page_of(query, RequestStep.request_opened_at, RequestStep.request_id, page)
    steps = list(await session.scalars(query))
    by_id = {
        r.id: r
        for r in await session.scalars(
            select(ApprovalRequest).where(ApprovalRequest.id.in_([s.request_id for s in steps]))
        )
    }
    return [(step, by_id[step.request_id]) for step in steps]


# What time does -------------------------------------------------------------------------


async def lock_expiring(session: AsyncSession, now: datetime, limit: int) -> list[ApprovalRequest]:
    """Open requests whose time is up, locked; rows another worker holds are skipped."""
    rows = await session.scalars(
        select(ApprovalRequest)
        .where(ApprovalRequest.status == RequestStatus.OPEN, ApprovalRequest.expires_at <= now)
        .with_for_update(skip_locked=True)
        .limit(limit)
    )
    return list(rows)


async def lock_due_steps(
    session: AsyncSession, now: datetime, limit: int
) -> list[tuple[RequestStep, ApprovalRequest]]:
    """Active steps due for escalation (past their deadline, not yet escalated) or for a
    reminder, with their requests; the steps locked, rows another worker holds skipped."""
    rows: Any = await session.execute(
        select(RequestStep, ApprovalRequest)
        .join(ApprovalRequest, ApprovalRequest.id == RequestStep.request_id)
        .where(
            RequestStep.status == StepStatus.ACTIVE,
            RequestStep.due_at.is_not(None),
            or_(
                and_(RequestStep.escalated_at.is_(None), RequestStep.due_at <= now),
                and_(
                    RequestStep.reminded_at.is_(None),
                    RequestStep.remind_before_hours.is_not(None),
                    RequestStep.due_at - RequestStep.remind_before_hours * timedelta(hours=1)
                    <= now,
                ),
            ),
        )
        .with_for_update(of=RequestStep, skip_locked=True)
        .limit(limit)
    )
    return [(step, request) for step, request in rows.all()]
