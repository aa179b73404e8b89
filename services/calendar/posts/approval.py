"""The approval request of a post, as approvals' events tell it: so a post in review shows who
must act, at which step.

Approvals publishes ``approval.requested`` with the whole plan (the first step active), then
``approval.step_decided`` for every decision: an approval that meets the step's quorum makes
the next step active (there is no event of its own for that), ``approval.escalated`` adds
whom the step's deadline brought in, and one closing event ends the request (granted,
rejected, changes_requested, expired, superseded, withdrawn). Calendar keeps one row per post
(``PostApproval``), for the request of its latest submission.

Stale events change nothing:

- a request opens on the post only while it is in review with the content submitted (the
  content hash the request carries), and never over a request opened later (``opened_at``,
  the time of its ``approval.requested``): one request's events keep their order (they share
  its key), but two requests' events may interleave;
- every later event applies only to the request the post shows, while it is open, and a step
  event only to the step being decided (a replay or a late one finds another and stops).

Every change takes the post's row lock first, as decisions do, so two events of one post are
applied one after the other.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.calendar.models import PostApproval
from services.calendar.posts import repository
from services.calendar.posts.schemas import ApprovalOut, ApprovalStepOut, Approver
from services.calendar.vocabulary import ApprovalStatus, PostStatus

APPROVE = "approve"  # approvals' outcome of an approving decision


@dataclass(frozen=True)
class StepDecision:
    """What an ``approval.step_decided`` says of the step's tally."""

    position: int
    outcome: str
    approvals: int
    quorum: int

    @property
    def completes_step(self) -> bool:
        return self.outcome == APPROVE and self.approvals >= self.quorum


class ApprovalRequests:
    async def opened(
        self,
        session: AsyncSession,
        post_id: uuid.UUID,
        request_id: uuid.UUID,
        *,
        content_hash: str,
        steps: Sequence[ApprovalStepOut],
        at: datetime,
    ) -> bool:
        """A request opened on the post's submission, its first step active; False when
        stale (the post moved on, or shows a request opened later)."""
        post = await repository.find_post(session, post_id, lock=True)
        if post is None or post.status != PostStatus.IN_REVIEW or post.content_hash != content_hash:
            return False
        if not steps:
            return False  # approvals always plans a step; a request without one says nothing
        current = await repository.find_approval(session, post_id)
        if current is not None and (current.request_id == request_id or current.opened_at > at):
            return False
        if current is None:
            current = PostApproval(post_id=post_id)
            session.add(current)
        current.request_id = request_id
        current.status = ApprovalStatus.OPEN
        current.steps = [step.model_dump(mode="json") for step in steps]
        current.position = steps[0].position
        current.escalated_to = None
        current.opened_at = at
        current.updated_at = datetime.now(UTC)
        await session.flush()
        return True

    async def step_decided(
        self,
        session: AsyncSession,
        post_id: uuid.UUID,
        request_id: uuid.UUID,
        decision: StepDecision,
    ) -> bool:
        """A decision on the active step; one that meets its quorum makes the next step
        active (the last one's request closes with ``approval.granted``, which follows)."""
        current = await self._open(session, post_id, request_id, decision.position)
        if current is None or not decision.completes_step:
            return False
        following = decision.position + 1
        if any(step["position"] == following for step in current.steps):
            current.position = following
            current.escalated_to = None
            current.updated_at = datetime.now(UTC)
            await session.flush()
        return True

    async def escalated(
        self,
        session: AsyncSession,
        post_id: uuid.UUID,
        request_id: uuid.UUID,
        position: int,
        escalate_to: Approver | None,
    ) -> bool:
        """The active step passed its deadline: its escalation target may decide it too."""
        current = await self._open(session, post_id, request_id, position)
        if current is None:
            return False
        current.escalated_to = escalate_to.model_dump() if escalate_to else None
        current.updated_at = datetime.now(UTC)
        await session.flush()
        return True

    async def closed(
        self,
        session: AsyncSession,
        post_id: uuid.UUID,
        request_id: uuid.UUID,
        status: ApprovalStatus,
    ) -> bool:
        """The request closed with `status`: nobody is asked to act any more."""
        current = await self._open(session, post_id, request_id)
        if current is None:
            return False
        current.status = status
        current.position = None
        current.escalated_to = None
        current.updated_at = datetime.now(UTC)
        await session.flush()
        return True

    async def _open(
        self,
        session: AsyncSession,
        post_id: uuid.UUID,
        request_id: uuid.UUID,
        position: int | None = None,
    ) -> PostApproval | None:
        """The post's request, locked through the post, if it is `request_id`, still open
        and (given a `position`) deciding that step; None otherwise (a stale event)."""
        post = await repository.find_post(session, post_id, lock=True)
        if post is None:
            return None
        current = await repository.find_approval(session, post_id)
        if (
            current is None
            or current.request_id != request_id
            or current.status != ApprovalStatus.OPEN
            or (position is not None and current.position != position)
        ):
            return None
        return current

    async def out(self, session: AsyncSession, post_id: uuid.UUID) -> ApprovalOut | None:
        """The post's request as the API shows it; None before approvals opened one."""
        current = await repository.find_approval(session, post_id)
        if current is None:
            return None
        steps = [ApprovalStepOut.model_validate(step) for step in current.steps]
        active = next((s for s in steps if s.position == current.position), None)
        waiting_for: list[Approver] = []
        if active is not None:
            waiting_for.append(Approver(role=active.role, district_id=active.district_id))
            if current.escalated_to:
                waiting_for.append(Approver.model_validate(current.escalated_to))
        return ApprovalOut(
            request_id=current.request_id,
            status=ApprovalStatus(current.status),
            step=active,
            waiting_for=waiting_for,
            steps=steps,
        )


approval_requests = ApprovalRequests()
