"""The events the approvals service publishes on `chorus.approvals.events`, one model each,
listed in `catalog` (the service's `/asyncapi.json` is built from it).

Every event is about one approval request: its type is `chorus.approvals.approval.<verb>`, its
subject (and Kafka key) the request's id, so one request's events keep their order. Each
carries the request's identity (`ApprovalEvent`) and what its verb adds. `status` is the
request's once the event happened, fixed by the event type: `open` while the request's steps
are decided, reminded or escalated; the closing status (granted, rejected, changes_requested,
expired, superseded, withdrawn) on the one event that closed it.

The models import nothing of the service but its vocabularies and the policy schemas' quorum
words: the tables import `catalog` from here.
"""

from __future__ import annotations

import uuid
from typing import ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from chassis.events import EventCatalog, EventData
from services.approvals.vocabulary import (
    Outcome,
    OutsideReviewMode,
    QuorumMode,
    RequestStatus,
    SubjectKind,
    Via,
)


class StepQuorum(BaseModel):
    """How many approvals a step needs: its policy's mode, and the count it came to when the
    request was planned (`all` is the approver roster's size then)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: QuorumMode
    count: int = Field(ge=1)


class ApprovalStep(BaseModel):
    """A planned step of a request, as it stood when the event happened."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    position: int = Field(ge=0, description="The step's place in the plan, from 0")
    key: str
    name: str
    role: str = Field(description="The approver role that decides the step")
    district_id: str = Field(description="The district where the step's role is resolved")
    quorum: StepQuorum
    due_at: AwareDatetime | None = Field(
        description="When the step is escalated; null for a step without a deadline and for "
        "one not started yet"
    )
    reasons: list[str] = Field(description="Why the step is in the plan")
    outside_review: OutsideReviewMode


class PolicyVersionUsed(BaseModel):
    """A policy version the request's plan was made from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    policy_id: uuid.UUID
    district_id: str | None = Field(description="The policy's district; null: company-wide")
    version: int


class EscalationTarget(BaseModel):
    """Who may decide an escalated step besides its own role: this role, there or above."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: str
    district_id: str


class ApprovalEvent(EventData):
    """What every approval event says of its request. Not published itself."""

    request_id: uuid.UUID
    subject_kind: SubjectKind = Field(
        description="What is approved; a consumer skips the kinds it does not own"
    )
    subject_id: uuid.UUID = Field(description="The post's or the account request's id")
    district_id: str = Field(description="The request's district")
    content_hash: str = Field(description="The hash of the content submitted for approval")
    status: RequestStatus


class ApprovalRequested(ApprovalEvent):
    """A submission opened an approval request.

    Carries the plan the request was opened with: its steps (the first one active), the policy
    versions they came from, and the request it supersedes, if the subject had one open (that
    one's `approval.superseded` comes first)."""

    published_as: ClassVar[str] = "approval.requested"

    status: Literal[RequestStatus.OPEN] = RequestStatus.OPEN
    title: str | None
    author: str = Field(description="Who wrote what is to be approved; they never decide it")
    expires_at: AwareDatetime | None = Field(
        description="The subject's publish time: still open then, the request expires; null "
        "for a subject without one"
    )
    steps: list[ApprovalStep]
    policy_versions: list[PolicyVersionUsed]
    supersedes: uuid.UUID | None = Field(description="The request this one replaces")


class ApprovalStepDecided(ApprovalEvent):
    """Someone decided the request's active step.

    Published for every decision, approving or not, before the request's closing event when
    the decision closes it."""

    published_as: ClassVar[str] = "approval.step_decided"

    status: Literal[RequestStatus.OPEN] = RequestStatus.OPEN
    position: int = Field(ge=0, description="The decided step's place in the plan")
    step: str = Field(description="The decided step's key")
    decider: str = Field(description="An outside reviewer is `external:<email>`")
    via: Via
    acting_for: str | None = Field(description="Whom the decider stood in for (a delegation)")
    outcome: Outcome
    comment: str | None
    approvals: int = Field(ge=0, description="The step's approvals, this one included")
    quorum: int = Field(ge=1, description="The approvals the step needs")


class ApprovalGranted(ApprovalEvent):
    """The request's last step met its quorum: what `content_hash` names is approved."""

    published_as: ClassVar[str] = "approval.granted"

    status: Literal[RequestStatus.GRANTED] = RequestStatus.GRANTED
    decided_by: str = Field(description="Whose approval met the last quorum")
    comment: str | None


class ClosedAtStep(ApprovalEvent):
    """A decider closed the request at its active step without approving it."""

    decided_by: str
    comment: str = Field(description="Why: nobody rejects or asks for changes without one")
    step: str = Field(description="The key of the step it was closed at")


class ApprovalRejected(ClosedAtStep):
    """A decider rejected the request: closed, the content is not approved."""

    published_as: ClassVar[str] = "approval.rejected"

    status: Literal[RequestStatus.REJECTED] = RequestStatus.REJECTED


class ApprovalChangesRequested(ClosedAtStep):
    """A decider asked for changes: closed; a new submission opens a new request."""

    published_as: ClassVar[str] = "approval.changes_requested"

    status: Literal[RequestStatus.CHANGES_REQUESTED] = RequestStatus.CHANGES_REQUESTED


class ApprovalStepEvent(ApprovalStep, ApprovalEvent):
    """An event about the request's active step: the step's fields follow the request's, and
    `district_id` is the step's (where its role is resolved), not the request's."""

    status: Literal[RequestStatus.OPEN] = RequestStatus.OPEN


class ApprovalReminded(ApprovalStepEvent):
    """The request's active step nears its deadline (`due_at`) undecided.

    Once per step, and only for a step whose policy asks for a reminder; an escalation counts
    as the reminder."""

    published_as: ClassVar[str] = "approval.reminded"


class ApprovalEscalated(ApprovalStepEvent):
    """The request's active step passed its deadline (`due_at`) undecided.

    Once per step. From now on the escalation target's role, if it has one, may decide it too."""

    published_as: ClassVar[str] = "approval.escalated"

    escalate_to: EscalationTarget | None = Field(
        description="Null for a step whose policy names no one to escalate to"
    )


class ApprovalExpired(ApprovalEvent):
    """The subject's publish time passed while the request was still open: closed, the
    content is not approved."""

    published_as: ClassVar[str] = "approval.expired"

    status: Literal[RequestStatus.EXPIRED] = RequestStatus.EXPIRED
    expires_at: AwareDatetime


class ApprovalSuperseded(ApprovalEvent):
    """A newer submission of the same subject replaced the open request: closed, and the
    newer request's `approval.requested` follows."""

    published_as: ClassVar[str] = "approval.superseded"

    status: Literal[RequestStatus.SUPERSEDED] = RequestStatus.SUPERSEDED
    superseded_by: uuid.UUID = Field(description="The newer request")


class ApprovalWithdrawn(ApprovalEvent):
    """The subject was edited, reopened or cancelled while in review: its open request no
    longer applies and is closed."""

    published_as: ClassVar[str] = "approval.withdrawn"

    status: Literal[RequestStatus.WITHDRAWN] = RequestStatus.WITHDRAWN
    reason: str = Field(description="As the subject's service gave it, or its event's verb")


catalog = EventCatalog(
    "approvals",
    [
        ApprovalRequested,
        ApprovalStepDecided,
        ApprovalGranted,
        ApprovalRejected,
        ApprovalChangesRequested,
        ApprovalEscalated,
        ApprovalReminded,
        ApprovalExpired,
        ApprovalSuperseded,
        ApprovalWithdrawn,
    ],
)
