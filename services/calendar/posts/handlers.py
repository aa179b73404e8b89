"""Handlers of approvals' events on posts and of the scheduler's callbacks.

Approvals decides many kinds of subjects; only ``post`` ones are read here. Its decisions
(granted, rejected, changes_requested, expired) move the post: one on a post that is no longer
in review, or whose content changed since (its content hash differs), is stale and changes
nothing. Every event of a request (requested, step_decided, escalated, the closing ones,
superseded and withdrawn too) also keeps the post's view of its request (``approval``): who
must act, at which step; stale ones change nothing there either. The scheduler's callbacks
arrive as the webhooks service's ``scheduler.post_published`` / ``scheduler.post_failed``, one
per account.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.consumer import Handler
from chassis.events import CloudEvent
from services.calendar.posts.approval import StepDecision, approval_requests
from services.calendar.posts.publication import publication
from services.calendar.posts.schemas import ApprovalStepOut, Approver
from services.calendar.posts.service import SUBJECT_KIND
from services.calendar.vocabulary import ApprovalStatus

GRANTED = "chorus.approvals.approval.granted"
REJECTED = "chorus.approvals.approval.rejected"
CHANGES_REQUESTED = "chorus.approvals.approval.changes_requested"
EXPIRED = "chorus.approvals.approval.expired"
REQUESTED = "chorus.approvals.approval.requested"
STEP_DECIDED = "chorus.approvals.approval.step_decided"
ESCALATED = "chorus.approvals.approval.escalated"
SUPERSEDED = "chorus.approvals.approval.superseded"
WITHDRAWN = "chorus.approvals.approval.withdrawn"
EXPIRED_REASON = "The approval expired: the publish time passed before anyone decided."
PUBLISHED = "chorus.webhooks.scheduler.post_published"
FAILED = "chorus.webhooks.scheduler.post_failed"
FAILURE_REASON = "The scheduler reported a failure."


class ApprovalDecided(BaseModel):
    """The fields of approvals' decision events this service reads."""

    model_config = ConfigDict(extra="ignore")

    subject_kind: str
    subject_id: uuid.UUID
    # Every event of approvals names its request; a decision without one still moves the post.
    request_id: uuid.UUID | None = None
    content_hash: str | None = None
    comment: str | None = None
    decided_by: str | None = None


class ApprovalRequestEvent(BaseModel):
    """The fields every approval event carries that this service reads: whose request."""

    model_config = ConfigDict(extra="ignore")

    subject_id: uuid.UUID
    request_id: uuid.UUID


class ApprovalRequested(ApprovalRequestEvent):
    """The fields of ``approval.requested`` read here: the hash submitted, and the plan."""

    content_hash: str
    steps: list[ApprovalStepOut]


class ApprovalStepDecided(ApprovalRequestEvent):
    """The fields of ``approval.step_decided`` read here: the step and its tally."""

    position: int
    outcome: str
    approvals: int
    quorum: int


class ApprovalEscalated(ApprovalRequestEvent):
    """The fields of ``approval.escalated`` read here (the step's own are flattened in)."""

    position: int
    escalate_to: Approver | None = None


async def on_requested(session: AsyncSession, event: CloudEvent) -> None:
    if event.data.get("subject_kind") != SUBJECT_KIND:
        return
    requested = ApprovalRequested.model_validate(event.data)
    await approval_requests.opened(
        session,
        requested.subject_id,
        requested.request_id,
        content_hash=requested.content_hash,
        steps=requested.steps,
        at=event.time,
    )


async def on_step_decided(session: AsyncSession, event: CloudEvent) -> None:
    if event.data.get("subject_kind") != SUBJECT_KIND:
        return
    decided = ApprovalStepDecided.model_validate(event.data)
    await approval_requests.step_decided(
        session,
        decided.subject_id,
        decided.request_id,
        StepDecision(decided.position, decided.outcome, decided.approvals, decided.quorum),
    )


async def on_escalated(session: AsyncSession, event: CloudEvent) -> None:
    if event.data.get("subject_kind") != SUBJECT_KIND:
        return
    escalated = ApprovalEscalated.model_validate(event.data)
    await approval_requests.escalated(
        session,
        escalated.subject_id,
        escalated.request_id,
        escalated.position,
        escalated.escalate_to,
    )


def _closer(status: ApprovalStatus) -> Handler:
    """A closing event that decides nothing for the post (superseded, withdrawn)."""

    async def on_closed(session: AsyncSession, event: CloudEvent) -> None:
        if event.data.get("subject_kind") != SUBJECT_KIND:
            return
        closed = ApprovalRequestEvent.model_validate(event.data)
        await approval_requests.closed(session, closed.subject_id, closed.request_id, status)

    return on_closed


class SchedulerCallback(BaseModel):
    """The fields of the scheduler's callbacks this service reads."""

    model_config = ConfigDict(extra="ignore")

    post_id: uuid.UUID
    account_id: uuid.UUID
    external_id: str | None = Field(default=None, max_length=500)
    permalink: str | None = Field(default=None, max_length=2000)
    # An instant without its offset is ambiguous: such a callback is malformed (dead letter).
    published_at: AwareDatetime | None = None
    error: str | None = Field(default=None, max_length=2000)


def _decider(outcome: str, closes_with: ApprovalStatus, reason: str | None = None) -> Handler:
    async def on_decision(session: AsyncSession, event: CloudEvent) -> None:
        if event.data.get("subject_kind") != SUBJECT_KIND:
            return
        # A malformed decision on a post raises: the consumer dead-letters it.
        decision = ApprovalDecided.model_validate(event.data)
        await publication.decide(
            session,
            decision.subject_id,
            outcome,
            content_hash_decided=decision.content_hash,
            decided_by=decision.decided_by,
            comment=reason or decision.comment,
        )
        if decision.request_id is not None:
            await approval_requests.closed(
                session, decision.subject_id, decision.request_id, closes_with
            )

    return on_decision


async def on_published(session: AsyncSession, event: CloudEvent) -> None:
    callback = SchedulerCallback.model_validate(event.data)
    await _record(session, callback, published_at=callback.published_at or event.time, error=None)


async def on_failed(session: AsyncSession, event: CloudEvent) -> None:
    callback = SchedulerCallback.model_validate(event.data)
    await _record(session, callback, published_at=None, error=callback.error or FAILURE_REASON)


async def _record(
    session: AsyncSession,
    callback: SchedulerCallback,
    *,
    published_at: datetime | None,
    error: str | None,
) -> None:
    """What the scheduler reported for one account of a post; a failure keeps no permalink."""
    await publication.record_publication(
        session,
        callback.post_id,
        callback.account_id,
        external_id=callback.external_id,
        permalink=callback.permalink if error is None else None,
        published_at=published_at,
        error=error,
    )


APPROVAL_HANDLERS: dict[str, Handler] = {
    REQUESTED: on_requested,
    STEP_DECIDED: on_step_decided,
    ESCALATED: on_escalated,
    GRANTED: _decider("approved", ApprovalStatus.GRANTED),
    REJECTED: _decider("rejected", ApprovalStatus.REJECTED),
    CHANGES_REQUESTED: _decider("changes_requested", ApprovalStatus.CHANGES_REQUESTED),
    # Back to draft, so the author can pick a new time and submit again.
    EXPIRED: _decider("draft", ApprovalStatus.EXPIRED, EXPIRED_REASON),
    SUPERSEDED: _closer(ApprovalStatus.SUPERSEDED),
    WITHDRAWN: _closer(ApprovalStatus.WITHDRAWN),
}
SCHEDULER_HANDLERS: dict[str, Handler] = {PUBLISHED: on_published, FAILED: on_failed}
