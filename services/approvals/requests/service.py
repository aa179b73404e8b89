"""Approval requests: opening them from submissions, deciding, and what time does to them.

A request opens from a subject's submission (a post, an account request) with a snapshot of
what is to be approved, its content hash and the plan its district's policies give at that
moment; the plan is copied into ``request_steps``, so a later policy change never alters a
request in flight. A newer submission of the same subject supersedes the open request.

Steps run in order; the active one completes when its quorum of approvals is reached, and the
next one starts. A rejection or a request for changes closes the request at once. Each
decision is one row (append-only) and one ``approval.step_decided`` event; closing publishes
``approval.granted`` / ``approval.rejected`` / ``approval.changes_requested``.

Deciding takes the request's row lock, so two approvers deciding at once are serialised: the
second sees the first's effect (a closed request is 409, a completed step moves the decision
to the next one only if the decider names no position). Repeating a decision with the same
idempotency key returns the first one and changes nothing.

Who may decide (``eligibility``): the step's role held on the step's district or above it; a
delegate standing in for someone who held it when they delegated; after escalation, the
escalation target's role too; an outside reviewer through a single-use link (``reviews``),
only on a step whose policy says outside answers count (``outside_review == "counted"``).
The author of the content never decides on it, not even through a delegation: a delegation
from the author is never the way a delegate decides their request, nor lists it as pending.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, exists, false, or_, select, text, true, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.districts import scope_of as scope_over
from chassis.errors import Conflict, Forbidden, NotFound
from chassis.principal import Principal
from services.approvals.access import Scope, can_read, load_scoped, path_of
from services.approvals.delegations.service import active_delegations_to, delegations
from services.approvals.models import (
    ApprovalRequest,
    Decision,
    RequestHistory,
    RequestStep,
    ReviewInvite,
    districts,
    messaging,
)
from services.approvals.policies.schemas import SubjectFacts
from services.approvals.policies.service import plan_for

OUTCOME_TO_STATUS = {
    "approve": "approved",
    "reject": "rejected",
    "request_changes": "changes_requested",
}
CLOSING_EVENT = {"rejected": "rejected", "changes_requested": "changes_requested"}
SYSTEM = "approvals"


class RequestNotFound(NotFound):
    type_slug = "approval-request-not-found"
    title = "Approval request not found"


class RequestClosed(Conflict):
    type_slug = "approval-request-closed"
    title = "The request is no longer open"


class StepNotActive(Conflict):
    type_slug = "step-not-active"
    title = "That step is not the one being decided"


class AlreadyDecided(Conflict):
    type_slug = "already-decided"
    title = "You have already decided on this step"


class NotEligible(Forbidden):
    type_slug = "not-an-eligible-approver"
    title = "You may not decide this step"


class NoOutsideDecisions(Conflict):
    type_slug = "step-takes-no-outside-decisions"
    title = "Outside reviewers' answers are not decisions of this step"


class SelfApproval(Forbidden):
    type_slug = "self-approval"
    title = "Authors do not approve their own content"


@dataclass(frozen=True)
class Decider:
    """Who decides and how they came to be allowed: ``grant`` (their own role), ``delegation``
    (standing in for ``acting_for``), ``escalation`` (the escalation target's role), or
    ``external`` (an outside reviewer's link)."""

    person: str
    via: str
    acting_for: str | None = None


@dataclass(frozen=True)
class Opening:
    """A submission, as the consumers read it from an event."""

    subject_kind: str
    subject_id: uuid.UUID
    district_id: str
    author: str
    title: str | None
    snapshot: dict[str, Any]
    content_hash: str
    expires_at: datetime | None
    facts: SubjectFacts
    source_event_id: uuid.UUID | None


def _step_data(step: RequestStep) -> dict[str, Any]:
    return {
        "position": step.position,
        "key": step.key,
        "name": step.name,
        "role": step.role,
        "district_id": step.district_id,
        "quorum": {"mode": step.quorum_mode, "count": step.quorum_count},
        "due_at": step.due_at.isoformat() if step.due_at else None,
        "reasons": step.reasons,
        "outside_review": step.outside_review,
    }


class RequestService:
    # Reading -------------------------------------------------------------------------------

    async def get_visible(
        self, session: AsyncSession, scope: Scope, request_id: uuid.UUID
    ) -> ApprovalRequest:
        request, _path = await load_scoped(
            session, scope, ApprovalRequest, request_id, RequestNotFound, shared_down=False
        )
        return request

    async def steps(self, session: AsyncSession, request_id: uuid.UUID) -> list[RequestStep]:
        rows = await session.scalars(
            select(RequestStep)
            .where(RequestStep.request_id == request_id)
            .order_by(RequestStep.position)
        )
        return list(rows)

    async def decisions(self, session: AsyncSession, request_id: uuid.UUID) -> list[Decision]:
        rows = await session.scalars(
            select(Decision).where(Decision.request_id == request_id).order_by(Decision.id)
        )
        return list(rows)

    async def advisory_answers(
        self, session: AsyncSession, request_id: uuid.UUID
    ) -> list[ReviewInvite]:
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
                RequestStep.outside_review == "advisory",
            )
            .order_by(ReviewInvite.used_at, ReviewInvite.id)
        )
        return list(rows)

    async def history(
        self, session: AsyncSession, request_id: uuid.UUID, *, after: int, limit: int
    ) -> list[RequestHistory]:
        rows = await session.scalars(
            select(RequestHistory)
            .where(RequestHistory.request_id == request_id, RequestHistory.id > after)
            .order_by(RequestHistory.id)
            .limit(limit)
        )
        return list(rows)

    # Opening and closing from events -------------------------------------------------------

    async def open(self, session: AsyncSession, opening: Opening) -> ApprovalRequest:
        """Open a request for the submission, superseding the subject's open one."""
        if opening.source_event_id is not None:
            seen = await session.scalar(
                select(ApprovalRequest).where(
                    ApprovalRequest.source_event_id == opening.source_event_id
                )
            )
            if seen is not None:
                return seen
        current = await self._open_for_subject(
            session, opening.subject_kind, opening.subject_id, lock=True
        )
        plan = await plan_for(session, opening.district_id, opening.facts)
        request = ApprovalRequest(
            id=uuid.uuid4(),
            subject_kind=opening.subject_kind,
            subject_id=opening.subject_id,
            district_id=opening.district_id,
            title=opening.title,
            author=opening.author,
            snapshot=opening.snapshot,
            content_hash=opening.content_hash,
            expires_at=opening.expires_at,
            policy_versions=[p.model_dump(mode="json") for p in plan.policy_versions],
            status="open",
            source_event_id=opening.source_event_id,
            opened_at=datetime.now(UTC),
        )
        if current is not None:
            await self._close(
                session,
                current,
                "superseded",
                SYSTEM,
                {"superseded_by": str(request.id)},
                verb="superseded",
            )
        session.add(request)
        await session.flush()
        steps = [
            RequestStep(
                request_id=request.id,
                position=position,
                key=planned.key,
                name=planned.name,
                role=planned.role,
                district_id=planned.district_id,
                quorum_mode=planned.quorum_mode,
                quorum_count=planned.quorum_count,
                deadline_hours=planned.deadline_hours,
                remind_before_hours=planned.remind_before_hours,
                escalate_to_role=planned.escalate_to_role,
                escalate_to_district_id=planned.escalate_to_district_id,
                reasons=planned.reasons,
                outside_review=planned.outside_review,
                request_author=request.author,
                request_opened_at=request.opened_at,
                status="waiting",
                approvals=0,
            )
            for position, planned in enumerate(plan.steps)
        ]
        session.add_all(steps)
        await session.flush()
        first = steps[0]
        self._activate(request, first)
        await session.flush()
        await self._record(
            session,
            request,
            "opened",
            opening.author,
            {"steps": [s.key for s in steps], "policies": request.policy_versions},
        )
        await self._publish(
            session,
            request,
            "requested",
            {
                "title": request.title,
                "author": request.author,
                "expires_at": request.expires_at.isoformat() if request.expires_at else None,
                "steps": [_step_data(s) for s in steps],
                "policy_versions": request.policy_versions,
                "supersedes": str(current.id) if current is not None else None,
            },
        )
        return request

    async def withdraw(
        self, session: AsyncSession, subject_kind: str, subject_id: uuid.UUID, reason: str
    ) -> ApprovalRequest | None:
        """The subject was edited, reopened or cancelled: its open request no longer applies."""
        current = await self._open_for_subject(session, subject_kind, subject_id, lock=True)
        if current is not None:
            await self._close(
                session, current, "withdrawn", SYSTEM, {"reason": reason}, verb="withdrawn"
            )
        return current

    async def _open_for_subject(
        self, session: AsyncSession, subject_kind: str, subject_id: uuid.UUID, *, lock: bool
    ) -> ApprovalRequest | None:
        query = select(ApprovalRequest).where(
            ApprovalRequest.subject_kind == subject_kind,
            ApprovalRequest.subject_id == subject_id,
            ApprovalRequest.status == "open",
        )
        if lock:
            query = query.with_for_update()
        return await session.scalar(query)

    def _activate(self, request: ApprovalRequest, step: RequestStep) -> None:
        now = datetime.now(UTC)
        step.status = "active"
        step.activated_at = now
        step.due_at = now + timedelta(hours=step.deadline_hours) if step.deadline_hours else None
        request.current_position = step.position

    async def _close(
        self,
        session: AsyncSession,
        request: ApprovalRequest,
        status: str,
        actor: str,
        details: dict[str, Any],
        *,
        verb: str,
        step_status: str = "closed",
    ) -> None:
        request.status = status
        request.closed_at = datetime.now(UTC)
        request.version += 1
        await session.execute(
            update(RequestStep)
            .where(
                RequestStep.request_id == request.id,
                RequestStep.status.in_(("waiting", "active")),
            )
            .values(status=step_status)
        )
        await session.flush()
        await self._record(session, request, status, actor, details)
        await self._publish(session, request, verb, details)

    # Deciding --------------------------------------------------------------------------------

    async def decide(
        self,
        session: AsyncSession,
        principal: Principal,
        request_id: uuid.UUID,
        *,
        outcome: str,
        comment: str | None,
        idempotency_key: str | None,
        position: int | None,
    ) -> tuple[Decision, bool]:
        """A caller's decision on the request's active step (or the step at `position`), and
        whether it is new (False: the same idempotency key again, nothing changed)."""
        # Seen again: what the caller delegated follows the roles they hold now.
        await delegations.narrow_to_current(session, principal)
        request = await session.scalar(
            select(ApprovalRequest).where(ApprovalRequest.id == request_id).with_for_update()
        )
        if request is None:
            raise RequestNotFound(f"No approval request {request_id}.")
        scope = await scope_over(session, principal, districts)
        readable = can_read(scope, await path_of(session, request.district_id))
        if idempotency_key is not None:
            earlier = await session.scalar(
                select(Decision).where(
                    Decision.request_id == request.id,
                    Decision.decider == principal.sub,
                    Decision.idempotency_key == idempotency_key,
                )
            )
            if earlier is not None:
                return earlier, False  # the same decision again: nothing changes
        step = await self._active_step(session, request, position)
        decider = await self.eligibility(session, principal, scope, step, author=request.author)
        if decider is None:
            if not readable:
                raise RequestNotFound(f"No approval request {request_id}.")
            raise NotEligible(
                f"Step {step.name!r} is decided by {step.role} on {step.district_id} or above it.",
                role=step.role,
                district_id=step.district_id,
            )
        self.refuse_author(request, decider)
        decision = await self.record_decision(
            session, request, step.position, decider, outcome, comment, idempotency_key
        )
        return decision, True

    async def _active_step(
        self, session: AsyncSession, request: ApprovalRequest, position: int | None
    ) -> RequestStep:
        if request.status != "open":
            raise RequestClosed(f"The request is {request.status}.", status=request.status)
        wanted = request.current_position if position is None else position
        step = await session.get(RequestStep, (request.id, wanted))
        if step is None or step.status != "active":
            raise StepNotActive(
                f"Step {wanted} is not being decided; step {request.current_position} is.",
                current_position=request.current_position,
            )
        return step

    @staticmethod
    def refuse_author(request: ApprovalRequest, decider: Decider) -> None:
        """Nobody decides their own work: not the author, nor anyone standing in for them."""
        if request.author in (decider.person, decider.acting_for):
            raise SelfApproval("The author of the content cannot decide on it.")

    async def eligibility(
        self,
        session: AsyncSession,
        principal: Principal,
        scope: Scope,
        step: RequestStep,
        *,
        author: str | None = None,
    ) -> Decider | None:
        """How the caller may decide the step, or None. A delegation from `author` is the
        last resort: the caller may hold another way in (their own role, someone else's
        delegation), and only when it is the only one does the answer name the author, so
        that ``refuse_author`` says why."""
        step_path = await path_of(session, step.district_id)
        escalation_path = (
            await path_of(session, step.escalate_to_district_id)
            if step.escalated_at is not None and step.escalate_to_role
            else None
        )

        def allowed(candidate: Scope) -> str | None:
            if step_path is not None and candidate.has_role(step_path, {step.role}):
                return "grant"
            if escalation_path is not None and candidate.has_role(
                escalation_path, {step.escalate_to_role or ""}
            ):
                return "escalation"
            return None

        via = allowed(scope)
        if via is not None:
            return Decider(principal.sub, via)
        through_author: Decider | None = None
        for delegation in await active_delegations_to(session, principal.sub, datetime.now(UTC)):
            delegator = Principal(
                sub=delegation.delegator,
                grants={d: frozenset(r) for d, r in delegation.grants.items()},
                exp=principal.exp,
            )
            if allowed(await scope_over(session, delegator, districts)) is not None:
                found = Decider(principal.sub, "delegation", acting_for=delegation.delegator)
                if delegation.delegator != author:
                    return found
                through_author = through_author or found
        return through_author

    async def record_decision(
        self,
        session: AsyncSession,
        request: ApprovalRequest,
        position: int,
        decider: Decider,
        outcome: str,
        comment: str | None,
        idempotency_key: str | None,
    ) -> Decision:
        """Record an eligible decider's decision on the active step at `position`, apply the
        quorum, and advance or close the request."""
        await session.execute(
            select(ApprovalRequest.id).where(ApprovalRequest.id == request.id).with_for_update()
        )
        await session.refresh(request)
        step = await self._active_step(session, request, position)
        if decider.via == "external" and step.outside_review != "counted":
            # The policy step decides what an outside answer is; anywhere else it is advice.
            raise NoOutsideDecisions(
                f"Step {step.position} counts no outside answers ({step.outside_review}).",
                outside_review=step.outside_review,
            )
        decision = Decision(
            request_id=request.id,
            position=step.position,
            decider=decider.person,
            acting_for=decider.acting_for,
            via=decider.via,
            outcome=outcome,
            comment=comment,
            idempotency_key=idempotency_key,
        )
        try:
            async with session.begin_nested():
                session.add(decision)
                await session.flush()
        except IntegrityError as exc:
            raise AlreadyDecided(
                f"{decider.person} has already decided step {step.position}."
            ) from exc
        details = {
            "position": step.position,
            "step": step.key,
            "decider": decider.person,
            "via": decider.via,
            "acting_for": decider.acting_for,
            "outcome": outcome,
            "comment": comment,
        }
        await self._record(session, request, "decided", decider.person, details)
        if outcome == "approve":
            step.approvals += 1
        await self._publish(
            session,
            request,
            "step_decided",
            {**details, "approvals": step.approvals, "quorum": step.quorum_count},
        )
        if outcome != "approve":
            step.status = OUTCOME_TO_STATUS[outcome]
            step.completed_at = datetime.now(UTC)
            status = OUTCOME_TO_STATUS[outcome]
            await self._close(
                session,
                request,
                status,
                decider.person,
                {"decided_by": decider.person, "comment": comment, "step": step.key},
                verb=CLOSING_EVENT[status],
            )
            return decision
        if step.approvals >= step.quorum_count:
            step.status = "approved"
            step.completed_at = datetime.now(UTC)
            following = await session.get(RequestStep, (request.id, step.position + 1))
            if following is not None:
                self._activate(request, following)
                request.version += 1
                await session.flush()
                await self._record(session, request, "step_started", SYSTEM, _step_data(following))
            else:
                await self._close(
                    session,
                    request,
                    "granted",
                    decider.person,
                    {"decided_by": decider.person, "comment": comment},
                    verb="granted",
                    step_status="approved",
                )
        await session.flush()
        return decision

    # "My pending approvals" ------------------------------------------------------------------

    async def pending_query(
        self, session: AsyncSession, principal: Principal, scope: Scope
    ) -> Select[RequestStep]:
        """Active steps the caller may decide (by their grants, an escalation or a delegation)
        on requests they did not write and have not decided yet."""
        # Each scope with the author it may not decide for: a delegate never decides the
        # delegator's own content.
        scopes: list[tuple[Scope, str | None]] = [(scope, None)]
        for delegation in await active_delegations_to(session, principal.sub, datetime.now(UTC)):
            delegator = Principal(
                sub=delegation.delegator,
                grants={d: frozenset(r) for d, r in delegation.grants.items()},
                exp=principal.exp,
            )
            scopes.append((await scope_over(session, delegator, districts), delegation.delegator))
        # The districts under each role's grants, as ids: the partial indexes on active steps
        # (role, district) then find the candidates without reading the tree per row.
        conditions = []
        for candidate, not_by in scopes:
            for role, paths in candidate.role_paths.items():
                ids = list(
                    await session.scalars(
                        select(districts.c.id).where(
                            text("districts.path <@ CAST(:p AS ltree[])").bindparams(p=list(paths))
                        )
                    )
                )
                not_theirs = true() if not_by is None else RequestStep.request_author != not_by
                conditions.append(
                    and_(RequestStep.role == role, RequestStep.district_id.in_(ids), not_theirs)
                )
                conditions.append(
                    and_(
                        RequestStep.escalated_at.is_not(None),
                        RequestStep.escalate_to_role == role,
                        RequestStep.escalate_to_district_id.in_(ids),
                        not_theirs,
                    )
                )
        mine = or_(*conditions) if conditions else false()
        return select(RequestStep).where(
            RequestStep.status == "active",
            mine,
            RequestStep.request_author != principal.sub,
            ~exists().where(
                Decision.request_id == RequestStep.request_id,
                Decision.position == RequestStep.position,
                Decision.decider == principal.sub,
            ),
        )

    async def pending(
        self,
        session: AsyncSession,
        principal: Principal,
        scope: Scope,
        *,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[tuple[RequestStep, ApprovalRequest]]:
        await delegations.narrow_to_current(session, principal)
        query = await self.pending_query(session, principal, scope)
        if after is not None:
            query = query.where(
                tuple_(RequestStep.request_opened_at, RequestStep.request_id) > tuple_(*after)
            )
        steps = list(
            await session.scalars(
                query.order_by(RequestStep.request_opened_at, RequestStep.request_id).limit(limit)
            )
        )
        by_id = {
            r.id: r
            for r in await session.scalars(
                select(ApprovalRequest).where(ApprovalRequest.id.in_([s.request_id for s in steps]))
            )
        }
        return [(step, by_id[step.request_id]) for step in steps]

    # Time: reminders, escalations, expiry ------------------------------------------------

    async def sweep(self, session: AsyncSession, now: datetime | None = None) -> dict[str, int]:
        """Remind, escalate and expire what is due. Runs as a periodic job; each row is taken
        with SKIP LOCKED, so two workers never act twice on one request."""
        now = now or datetime.now(UTC)
        counts = {"reminded": 0, "escalated": 0, "expired": 0}
        expiring = await session.scalars(
            select(ApprovalRequest)
            .where(ApprovalRequest.status == "open", ApprovalRequest.expires_at <= now)
            .with_for_update(skip_locked=True)
            .limit(500)
        )
        for request in list(expiring):
            await self._close(
                session,
                request,
                "expired",
                SYSTEM,
                {"expires_at": request.expires_at.isoformat() if request.expires_at else None},
                verb="expired",
            )
            counts["expired"] += 1
        due = await session.execute(
            select(RequestStep, ApprovalRequest)
            .join(ApprovalRequest, ApprovalRequest.id == RequestStep.request_id)
            .where(
                RequestStep.status == "active",
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
            .limit(500)
        )
        for step, request in due.all():
            assert step.due_at is not None
            if step.escalated_at is None and step.due_at <= now:
                step.escalated_at = now
                step.reminded_at = step.reminded_at or now
                data = {
                    **_step_data(step),
                    "escalate_to": {
                        "role": step.escalate_to_role,
                        "district_id": step.escalate_to_district_id,
                    }
                    if step.escalate_to_role
                    else None,
                }
                await self._record(session, request, "escalated", SYSTEM, data)
                await self._publish(session, request, "escalated", data)
                counts["escalated"] += 1
            elif step.reminded_at is None:
                step.reminded_at = now
                await self._record(session, request, "reminded", SYSTEM, _step_data(step))
                await self._publish(session, request, "reminded", _step_data(step))
                counts["reminded"] += 1
        await session.flush()
        return counts

    # Plumbing --------------------------------------------------------------------------------

    async def _record(
        self,
        session: AsyncSession,
        request: ApprovalRequest,
        action: str,
        actor: str,
        details: dict[str, Any],
    ) -> None:
        session.add(
            RequestHistory(
                request_id=request.id,
                action=action,
                actor=actor,
                details={k: v for k, v in details.items() if v is not None},
            )
        )
        await session.flush()

    async def _publish(
        self, session: AsyncSession, request: ApprovalRequest, verb: str, data: dict[str, Any]
    ) -> None:
        await messaging.publisher.publish(
            session,
            aggregate="approval",
            verb=verb,
            subject=str(request.id),
            data={
                "request_id": str(request.id),
                "subject_kind": request.subject_kind,
                "subject_id": str(request.subject_id),
                "district_id": request.district_id,
                "content_hash": request.content_hash,
                "status": request.status,
                **data,
            },
        )


requests = RequestService()
