"""What time does to requests: reminders before a step's deadline, escalation at it, and
expiry of a request still open when its subject's publish time passes.

Runs as a periodic job (``jobs``). Each row is taken with SKIP LOCKED, so two workers never
act twice on one request; a batch is bounded, and what is left waits for the next run. A step
is reminded once and escalated once: escalation also counts as the reminder, and from then on
the escalation target's role may decide it too (see ``requests.service.eligibility``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.approvals.events import (
    ApprovalEscalated,
    ApprovalExpired,
    ApprovalReminded,
    ApprovalStep,
    ApprovalStepEvent,
    EscalationTarget,
)
from services.approvals.requests import repository
from services.approvals.requests.service import (
    REQUEST_IDENTITY,
    SYSTEM,
    approval_step,
    request_identity,
    requests,
)

# Rows taken per kind and per run: a backlog is worked off over a few runs, not in one
# transaction that holds thousands of locks.
BATCH = 500
# Left out of a step event's history entry: the request's fields, but not the step's own
# district_id, which stands in for the request's.
NOT_IN_STEP_HISTORY = REQUEST_IDENTITY - set(ApprovalStep.model_fields)


async def sweep(session: AsyncSession, now: datetime | None = None) -> dict[str, int]:
    """Remind, escalate and expire what is due; how many of each."""
    now = now or datetime.now(UTC)
    counts = {"reminded": 0, "escalated": 0, "expired": 0}
    for request in await repository.lock_expiring(session, now, BATCH):
        expired = ApprovalExpired(**request_identity(request), expires_at=request.expires_at)
        await requests.close(session, request, expired, SYSTEM)
        counts["expired"] += 1
    for step, request in await repository.lock_due_steps(session, now, BATCH):
        assert step.due_at is not None
        # The step's fields follow the request's, its district_id in place of the request's.
        about = request_identity(request) | approval_step(step).model_dump()
        if step.escalated_at is None and step.due_at <= now:
            step.escalated_at = now
            step.reminded_at = step.reminded_at or now
            target = (
                EscalationTarget(
                    role=step.escalate_to_role, district_id=step.escalate_to_district_id
                )
                if step.escalate_to_role
                else None
            )
            escalated = ApprovalEscalated(**about, escalate_to=target)
            await requests.record(session, request, "escalated", SYSTEM, step_history(escalated))
            await requests.publish(session, escalated)
            counts["escalated"] += 1
        elif step.reminded_at is None:
            step.reminded_at = now
            reminded = ApprovalReminded(**about)
            await requests.record(session, request, "reminded", SYSTEM, step_history(reminded))
            await requests.publish(session, reminded)
            counts["reminded"] += 1
    await session.flush()
    return counts


def step_history(event: ApprovalStepEvent) -> dict[str, Any]:
    """The request's history entry of a step event: the step and what the event adds."""
    return event.model_dump(mode="json", exclude=NOT_IN_STEP_HISTORY)
