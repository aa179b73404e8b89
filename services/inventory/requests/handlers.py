"""Handlers of the approvals service's events (account requests decided there).

Approvals decides many kinds of subjects; only `account_request` ones are read here. A decision
on a request that is unknown, or no longer open (cancelled, or decided by an earlier event), is
ignored: a redelivered or stale decision changes nothing.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.consumer import Handler
from chassis.events import CloudEvent
from services.inventory.requests.service import SUBJECT_KIND, account_requests

GRANTED = "chorus.approvals.approval.granted"
REJECTED = "chorus.approvals.approval.rejected"


class ApprovalDecided(BaseModel):
    """The fields of approval.granted / approval.rejected this service reads."""

    model_config = ConfigDict(extra="ignore")

    subject_kind: str
    subject_id: uuid.UUID
    comment: str | None = None
    decided_by: str | None = None


async def on_granted(session: AsyncSession, event: CloudEvent) -> None:
    await _decide(session, event, granted=True)


async def on_rejected(session: AsyncSession, event: CloudEvent) -> None:
    await _decide(session, event, granted=False)


async def _decide(session: AsyncSession, event: CloudEvent, *, granted: bool) -> None:
    if event.data.get("subject_kind") != SUBJECT_KIND:
        return
    # A malformed decision on an account request raises: the consumer dead-letters it.
    decision = ApprovalDecided.model_validate(event.data)
    await account_requests.decide(
        session,
        decision.subject_id,
        granted=granted,
        comment=decision.comment,
        decided_by=decision.decided_by,
    )


HANDLERS: dict[str, Handler] = {GRANTED: on_granted, REJECTED: on_rejected}
