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

from services.approvals.requests import repository
from services.approvals.requests.service import SYSTEM, requests, step_data
from services.approvals.vocabulary import RequestStatus

# Rows taken per kind and per run: a backlog is worked off over a few runs, not in one
# transaction that holds thousands of locks.
BATCH = 500


async def sweep(session: AsyncSession, now: datetime | None = None) -> dict[str, int]:
    """Remind, escalate and expire what is due; how many of each."""
    now = now or datetime.now(UTC)
    counts = {"reminded": 0, "escalated": 0, "expired": 0}
    for request in await repository.lock_expiring(session, now, BATCH):
        await requests.close(
            session,
            request,
            RequestStatus.EXPIRED,
            SYSTEM,
            {"expires_at": request.expires_at.isoformat() if request.expires_at else None},
        )
        counts["expired"] += 1
    for step, request in await repository.lock_due_steps(session, now, BATCH):
        assert step.due_at is not None
        if step.escalated_at is None and step.due_at <= now:
            step.escalated_at = now
            step.reminded_at = step.reminded_at or now
            data: dict[str, Any] = {
                **step_data(step),
                "escalate_to": {
                    "role": step.escalate_to_role,
                    "district_id": step.escalate_to_district_id,
                }
                if step.escalate_to_role
                else None,
            }
            await requests.record(session, request, "escalated", SYSTEM, data)
            await requests.publish(session, request, "escalated", data)
            counts["escalated"] += 1
        elif step.reminded_at is None:
            step.reminded_at = now
            await requests.record(session, request, "reminded", SYSTEM, step_data(step))
            await requests.publish(session, request, "reminded", step_data(step))
            counts["reminded"] += 1
    await session.flush()
    return counts
