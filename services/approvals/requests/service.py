"""Approval requests: opening them from submissions, reading them, and deciding. What time
does to them (reminders, escalation, expiry) is in ``deadlines``; their queries are in
``repository``.

A request opens from a subject's submission (a post, an account request) with a snapshot of
what is to be approved, its content hash and the plan its district's policies give at that
moment; the plan is copied into ``request_steps``, so a later policy change never alters a
request in flight. A newer submission of the same subject supersedes the open request.

Steps run in order; the active one completes when its quorum of approvals is reached, and the
next one starts. A rejection or a request for changes closes the request at once. Each
decision is one row (append-only) and one ``approval.step_decided`` event; closing publishes
``approval.granted`` / ``approval.rejected`` / ``approval.changes_requested``. A request closes
only through ``close``, with the event that says why (``Closing``): the request takes its
status, the history its details, and the outbox the event.

Deciding takes the request's row lock, so two approvers deciding at once are serialised: the
second sees the first's effect (a closed request is 409, a completed step moves the decision
to the next one only if the decider names no position). Repeating a decision with the same
idempotency key returns the first one and changes nothing.

Who may decide (``eligibility``): the step's role held on the step's district or above it; a
delegate standing in for someone who held it when they delegated (``standing_in_for`` in
delegations); after escalation, the escalation target's role too; an outside reviewer through
a single-use link (``reviews``), only on a step whose policy says outside answers count
(``outside_review == "counted"``).
The author of the content never decides on it, not even through a delegation: a delegation
from the author is never the way a delegate decides their request, nor lists it as pending.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, computed_field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.districts import Scope, can_read
from chassis.errors import Conflict, Forbidden, NotFound
from chassis.pagination import Page, PageRequest, keyset_page
from services.approvals.access import tree
from services.approvals.delegations.service import delegations, standing_in_for
from services.approvals.events import (
    ApprovalChangesRequested,
    ApprovalEvent,
    ApprovalExpired,
    ApprovalGranted,
    ApprovalRejected,
    ApprovalRequested,
    ApprovalStep,
    ApprovalStepDecided,
    ApprovalSuperseded,
    ApprovalWithdrawn,
    StepQuorum,
)
from services.approvals.models import (
    ApprovalRequest,
    Decision,
    RequestHistory,
    RequestStep,
    messaging,
)
from services.approvals.policies.schemas import SubjectFacts
from services.approvals.policies.service import plan_for
from services.approvals.repository import list_district_ids_under
from services.approvals.requests import repository
from services.approvals.requests.repository import RequestFilters, RoleReach
from services.approvals.requests.schemas import (
    AdvisoryAnswerOut,
    DecisionOut,
    DecisionResult,
    HistoryEntry,
    PendingItem,
    RequestOut,
    RequestSummary,
    StepOut,
)
from services.approvals.vocabulary import (
    Outcome,
    OutsideReviewMode,
    RequestStatus,
    StepStatus,
    SubjectKind,
    Via,
)

# The events that close a request; each one's status is the request's from then on.
Closing = (
    ApprovalGranted
    | ApprovalRejected
    | ApprovalChangesRequested
    | ApprovalExpired
    | ApprovalSuperseded
    | ApprovalWithdrawn
)
# A decision that closes a request: the event it closes with, and the status its step takes.
OUTCOME_CLOSES_WITH: dict[
    Outcome, tuple[type[ApprovalRejected | ApprovalChangesRequested], StepStatus]
] = {
    Outcome.REJECT: (ApprovalRejected, StepStatus.REJECTED),
    Outcome.REQUEST_CHANGES: (ApprovalChangesRequested, StepStatus.CHANGES_REQUESTED),
}
# An event's fields about its request; the history keeps what the event says besides them.
REQUEST_IDENTITY = set(ApprovalEvent.model_fields)
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
    via: Via
    acting_for: str | None = None


class Opening(BaseModel):
    """A submission, as the consumers read it from an event: the columns of the request it
    opens, and the facts that choose its plan."""

    model_config = ConfigDict(frozen=True)

    subject_id: uuid.UUID
    district_id: str
    author: str
    title: str | None
    snapshot: dict[str, Any]
    content_hash: str
    expires_at: datetime | None
    facts: SubjectFacts
    source_event_id: uuid.UUID | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def subject_kind(self) -> SubjectKind:
        """The kind the facts are of: given once, there."""
        return self.facts.subject_kind


def request_identity(request: ApprovalRequest) -> dict[str, Any]:
    """The request's fields every approval event carries (``ApprovalEvent``); the status is
    the event type's own."""
    return {
        "request_id": request.id,
        "subject_kind": request.subject_kind,
        "subject_id": request.subject_id,
        "district_id": request.district_id,
        "content_hash": request.content_hash,
    }


def approval_step(step: RequestStep) -> ApprovalStep:
    """A planned step as events and the request's history show it: the step's columns of the
    same names, and its two quorum columns as one ``quorum``."""
    columns = {name: getattr(step, name) for name in ApprovalStep.model_fields if name != "quorum"}
    return ApprovalStep(
        **columns, quorum=StepQuorum(mode=step.quorum_mode, count=step.quorum_count)
    )


def require_open(request: ApprovalRequest) -> None:
    """409 once the request is closed: nothing more is decided or answered on it."""
    if request.status != RequestStatus.OPEN:
        raise RequestClosed(f"The request is {request.status}.", status=request.status)


class RequestService:
    # Reading -------------------------------------------------------------------------------

    async def get_visible(
        self, session: AsyncSession, scope: Scope, request_id: uuid.UUID
    ) -> ApprovalRequest:
        request, _path = await tree.load_scoped(
            session, scope, ApprovalRequest, request_id, RequestNotFound, shared_down=False
        )
        return request

    async def get(self, session: AsyncSession, scope: Scope, request_id: uuid.UUID) -> RequestOut:
        """The request with its snapshot, planned steps, decisions and advisory answers; 404
        for a request of a district the caller does not read."""
        return await self.describe(session, await self.get_visible(session, scope, request_id))

    async def describe(self, session: AsyncSession, request: ApprovalRequest) -> RequestOut:
        steps = await repository.list_steps(session, request.id)
        decisions = await repository.list_decisions(session, request.id)
        advice = await repository.list_advisory_answers(session, request.id)
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

    async def list_visible(
        self,
        session: AsyncSession,
        scope: Scope,
        page: PageRequest,
        filters: RequestFilters,
        *,
        district_id: str | None,
    ) -> Page[RequestSummary]:
        """Requests in the districts the caller reads (of `district_id` and below it, when
        given: 404 for a district they do not read), newest first."""
        subtree = None
        if district_id is not None:
            path = await tree.district_path(session, scope, district_id)
            subtree = tree.in_subtree(ApprovalRequest.district_id, path)
        rows = await repository.list_requests(
            session,
            tree.visible(ApprovalRequest.district_id, scope),
            filters,
            subtree=subtree,
            page=page,
        )
        return keyset_page(
            rows, page, key=lambda r: (r.opened_at, r.id), item=RequestSummary.model_validate
        )

    async def history(
        self, session: AsyncSession, scope: Scope, request_id: uuid.UUID, page: PageRequest
    ) -> Page[HistoryEntry]:
        """Everything that happened to a request the caller reads, oldest first."""
        await self.get_visible(session, scope, request_id)
        rows = await repository.list_history(session, request_id, page)
        return keyset_page(rows, page, key=lambda h: (h.id,), item=HistoryEntry.model_validate)

    # Opening and closing from events -------------------------------------------------------

    async def open(self, session: AsyncSession, opening: Opening) -> ApprovalRequest:
        """Open a request for the submission, superseding the subject's open one."""
        if opening.source_event_id is not None:
            seen = await repository.find_by_source_event(session, opening.source_event_id)
            if seen is not None:
                return seen
        current = await repository.find_open_for_subject(
            session, opening.subject_kind, opening.subject_id, lock=True
        )
        plan = await plan_for(session, opening.district_id, opening.facts)
        request = ApprovalRequest(
            id=uuid.uuid4(),
            **opening.model_dump(exclude={"facts"}),
            policy_versions=[p.model_dump(mode="json") for p in plan.policy_versions],
            status=RequestStatus.OPEN,
            opened_at=datetime.now(UTC),
        )
        if current is not None:
            await self.close(
                session,
                current,
                ApprovalSuperseded(**request_identity(current), superseded_by=request.id),
                SYSTEM,
            )
        session.add(request)
        await session.flush()
        steps = [
            RequestStep(
                request_id=request.id,
                position=position,
                # The step as planned; which policy added it, the request's policy_versions say.
                **planned.model_dump(exclude={"policy_id", "policy_district_id"}),
                request_author=request.author,
                request_opened_at=request.opened_at,
                status=StepStatus.WAITING,
                approvals=0,
            )
            for position, planned in enumerate(plan.steps)
        ]
        session.add_all(steps)
        await session.flush()
        first = steps[0]
        self._activate(request, first)
        await session.flush()
        await self.record(
            session,
            request,
            "opened",
            opening.author,
            {"steps": [s.key for s in steps], "policies": request.policy_versions},
        )
        await self.publish(
            session,
            ApprovalRequested(
                **request_identity(request),
                title=request.title,
                author=request.author,
                expires_at=request.expires_at,
                steps=[approval_step(s) for s in steps],
                policy_versions=request.policy_versions,
                supersedes=current.id if current is not None else None,
            ),
        )
        return request

    async def withdraw(
        self, session: AsyncSession, subject_kind: str, subject_id: uuid.UUID, reason: str
    ) -> ApprovalRequest | None:
        """The subject was edited, reopened or cancelled: its open request no longer applies."""
        current = await repository.find_open_for_subject(
            session, subject_kind, subject_id, lock=True
        )
        if current is not None:
            await self.close(
                session,
                current,
                ApprovalWithdrawn(**request_identity(current), reason=reason),
                SYSTEM,
            )
        return current

    def _activate(self, request: ApprovalRequest, step: RequestStep) -> None:
        now = datetime.now(UTC)
        step.status = StepStatus.ACTIVE
        step.activated_at = now
        step.due_at = now + timedelta(hours=step.deadline_hours) if step.deadline_hours else None
        request.current_position = step.position

    async def close(
        self,
        session: AsyncSession,
        request: ApprovalRequest,
        closing: Closing,
        actor: str,
        *,
        step_status: StepStatus = StepStatus.CLOSED,
    ) -> None:
        """Close the request with the status of `closing` (also the history's action), its
        steps still waiting or active with `step_status`, and publish `closing`."""
        request.status = closing.status
        request.closed_at = datetime.now(UTC)
        request.version += 1
        await repository.close_open_steps(session, request.id, step_status)
        await session.flush()
        details = closing.model_dump(mode="json", exclude=REQUEST_IDENTITY)
        await self.record(session, request, closing.status, actor, details)
        await self.publish(session, closing)

    # Deciding --------------------------------------------------------------------------------

    async def decide(
        self,
        session: AsyncSession,
        scope: Scope,
        request_id: uuid.UUID,
        *,
        outcome: Outcome,
        comment: str | None,
        idempotency_key: str | None,
        position: int | None,
    ) -> tuple[DecisionResult, bool]:
        """A caller's decision on the request's active step (or the step at `position`), with
        the request after it, and whether it is new (False: the same idempotency key again,
        nothing changed)."""
        principal = scope.principal
        # Seen again: what the caller delegated follows the roles they hold now.
        await delegations.narrow_to_current(session, principal)
        request = await repository.lock_request(session, request_id)
        if request is None:
            raise RequestNotFound(f"No approval request {request_id}.")
        readable = can_read(scope, await tree.path_of(session, request.district_id))
        decision = None
        if idempotency_key is not None:
            # The same decision again: nothing changes.
            decision = await repository.find_decision_by_key(
                session, request.id, principal.sub, idempotency_key
            )
        new = decision is None
        if decision is None:
            step = await self._active_step(session, request, position)
            decider = await self.eligibility(session, scope, step, author=request.author)
            if decider is None:
                if not readable:
                    raise RequestNotFound(f"No approval request {request_id}.")
                raise NotEligible(
                    f"Step {step.name!r} is decided by {step.role} on {step.district_id} or "
                    "above it.",
                    role=step.role,
                    district_id=step.district_id,
                )
            self.refuse_author(request, decider)
            decision = await self.record_decision(
                session, request, step.position, decider, outcome, comment, idempotency_key
            )
        result = DecisionResult(
            decision=DecisionOut.model_validate(decision),
            request=await self.describe(session, request),
        )
        return result, new

    async def _active_step(
        self, session: AsyncSession, request: ApprovalRequest, position: int | None
    ) -> RequestStep:
        require_open(request)
        wanted = request.current_position if position is None else position
        step = None if wanted is None else await repository.get_step(session, request.id, wanted)
        if step is None or step.status != StepStatus.ACTIVE:
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
        scope: Scope,
        step: RequestStep,
        *,
        author: str | None = None,
    ) -> Decider | None:
        """How the caller may decide the step, or None. A delegation from `author` is the
        last resort: the caller may hold another way in (their own role, someone else's
        delegation), and only when it is the only one does the answer name the author, so
        that ``refuse_author`` says why."""
        me = scope.principal.sub
        step_path = await tree.path_of(session, step.district_id)
        escalation_path = (
            await tree.path_of(session, step.escalate_to_district_id)
            if step.escalated_at is not None and step.escalate_to_role
            else None
        )

        def allowed(candidate: Scope) -> Via | None:
            if step_path is not None and (
                candidate.holds_exactly(step_path, step.role)
                if step.exact_role
                else candidate.has_role(step_path, {step.role})
            ):
                return Via.GRANT
            if escalation_path is not None and candidate.has_role(
                escalation_path, {step.escalate_to_role or ""}
            ):
                return Via.ESCALATION
            return None

        via = allowed(scope)
        if via is not None:
            return Decider(me, via)
        through_author: Decider | None = None
        for stand_in in await standing_in_for(session, scope.principal):
            if allowed(stand_in.scope) is not None:
                found = Decider(me, Via.DELEGATION, acting_for=stand_in.delegator)
                if stand_in.delegator != author:
                    return found
                through_author = through_author or found
        return through_author

    async def record_decision(
        self,
        session: AsyncSession,
        request: ApprovalRequest,
        position: int,
        decider: Decider,
        outcome: Outcome,
        comment: str | None,
        idempotency_key: str | None,
    ) -> Decision:
        """Record an eligible decider's decision on the active step at `position`, apply the
        quorum, and advance or close the request."""
        await repository.relock_request(session, request)
        step = await self._active_step(session, request, position)
        if decider.via == Via.EXTERNAL and step.outside_review != OutsideReviewMode.COUNTED:
            # The policy step decides what an outside answer is; anywhere else it is advice.
            raise NoOutsideDecisions(
                f"Step {step.position} counts no outside answers ({step.outside_review}).",
                outside_review=step.outside_review,
            )
        # What the decision's row and its event both say.
        said: dict[str, Any] = {
            "position": step.position,
            "decider": decider.person,
            "acting_for": decider.acting_for,
            "via": decider.via,
            "outcome": outcome,
            "comment": comment,
        }
        decision = Decision(request_id=request.id, idempotency_key=idempotency_key, **said)
        try:
            async with session.begin_nested():
                session.add(decision)
                await session.flush()
        except IntegrityError as exc:
            raise AlreadyDecided(
                f"{decider.person} has already decided step {step.position}."
            ) from exc
        if outcome == Outcome.APPROVE:
            step.approvals += 1
        decided = ApprovalStepDecided(
            **request_identity(request),
            **said,
            step=step.key,
            approvals=step.approvals,
            quorum=step.quorum_count,
        )
        # The history keeps the decision; the step's tally is in the step itself.
        details = decided.model_dump(
            mode="json", exclude=REQUEST_IDENTITY | {"approvals", "quorum"}
        )
        await self.record(session, request, "decided", decider.person, details)
        await self.publish(session, decided)
        if outcome != Outcome.APPROVE:
            closing, step_status = OUTCOME_CLOSES_WITH[outcome]
            step.status = step_status
            step.completed_at = datetime.now(UTC)
            await self.close(
                session,
                request,
                closing(
                    **request_identity(request),
                    decided_by=decider.person,
                    comment=comment,
                    step=step.key,
                ),
                decider.person,
            )
            return decision
        if step.approvals >= step.quorum_count:
            step.status = StepStatus.APPROVED
            step.completed_at = datetime.now(UTC)
            following = await repository.get_step(session, request.id, step.position + 1)
            if following is not None:
                self._activate(request, following)
                request.version += 1
                await session.flush()
                details = approval_step(following).model_dump(mode="json")
                await self.record(session, request, "step_started", SYSTEM, details)
            else:
                await self.close(
                    session,
                    request,
                    ApprovalGranted(
                        **request_identity(request), decided_by=decider.person, comment=comment
                    ),
                    decider.person,
                    step_status=StepStatus.APPROVED,
                )
        await session.flush()
        return decision

    # "My pending approvals" ------------------------------------------------------------------

    async def pending(
        self, session: AsyncSession, scope: Scope, page: PageRequest
    ) -> Page[PendingItem]:
        """Active steps the caller may decide (by their grants, an escalation or a
        delegation) on requests they did not write and have not decided yet; oldest first."""
        principal = scope.principal
        await delegations.narrow_to_current(session, principal)
        # Each scope with the author it may not decide for: a delegate never decides the
        # delegator's own content.
        scopes: list[tuple[Scope, str | None]] = [(scope, None)]
        scopes += [(s.scope, s.delegator) for s in await standing_in_for(session, principal)]
        # The districts under each role's grants, as ids.
        # Granted roles reach every step of their role; roles a grant merely includes reach
        # only the steps that do not ask for the exact role.
        reaches = [
            RoleReach(role, await list_district_ids_under(session, paths), not_by, granted)
            for candidate, not_by in scopes
            for granted, by_role in (
                (True, candidate.granted_paths),
                (False, candidate.role_paths),
            )
            for role, paths in by_role.items()
        ]
        rows = await repository.list_pending(
            session,
            principal.sub,
            reaches,
            page=page,
        )
        return keyset_page(
            rows,
            page,
            key=lambda row: (row[1].opened_at, row[1].id),
            item=lambda row: PendingItem(
                request=RequestSummary.model_validate(row[1]), step=StepOut.model_validate(row[0])
            ),
        )

    # Plumbing --------------------------------------------------------------------------------

    async def record(
        self,
        session: AsyncSession,
        request: ApprovalRequest,
        action: str,
        actor: str,
        details: dict[str, Any],
    ) -> None:
        """Append to the request's history."""
        session.add(
            RequestHistory(
                request_id=request.id,
                action=action,
                actor=actor,
                details={k: v for k, v in details.items() if v is not None},
            )
        )
        await session.flush()

    async def publish(self, session: AsyncSession, event: ApprovalEvent) -> None:
        """Publish an approval event through the outbox; its subject is the request's id."""
        await messaging.publisher.publish(session, event, subject=str(event.request_id))


requests = RequestService()
