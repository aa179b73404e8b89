"""Handlers of approvals' decisions on posts and of the scheduler's callbacks.

Approvals decides many kinds of subjects; only ``post`` ones are read here. A decision on a
post that is no longer in review, or whose content changed since (its content hash differs),
is stale and changes nothing. The scheduler's callbacks arrive as the webhooks service's
``scheduler.post_published`` / ``scheduler.post_failed``, one per account.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.consumer import Handler
from chassis.events import CloudEvent
from services.calendar.posts.publication import publication
from services.calendar.posts.service import SUBJECT_KIND

GRANTED = "chorus.approvals.approval.granted"
REJECTED = "chorus.approvals.approval.rejected"
CHANGES_REQUESTED = "chorus.approvals.approval.changes_requested"
EXPIRED = "chorus.approvals.approval.expired"
EXPIRED_REASON = "The approval expired: the publish time passed before anyone decided."
PUBLISHED = "chorus.webhooks.scheduler.post_published"
FAILED = "chorus.webhooks.scheduler.post_failed"
FAILURE_REASON = "The scheduler reported a failure."


class ApprovalDecided(BaseModel):
    """The fields of approvals' decision events this service reads."""

    model_config = ConfigDict(extra="ignore")

    subject_kind: str
    subject_id: uuid.UUID
    content_hash: str | None = None
    comment: str | None = None
    decided_by: str | None = None


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


def _decider(outcome: str, reason: str | None = None) -> Handler:
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
    GRANTED: _decider("approved"),
    REJECTED: _decider("rejected"),
    CHANGES_REQUESTED: _decider("changes_requested"),
    # Back to draft, so the author can pick a new time and submit again.
    EXPIRED: _decider("draft", EXPIRED_REASON),
}
SCHEDULER_HANDLERS: dict[str, Handler] = {PUBLISHED: on_published, FAILED: on_failed}
