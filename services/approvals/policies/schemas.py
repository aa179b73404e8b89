"""Policy steps as written, and the plan a request is opened with.

A policy is an ordered list of steps that it adds to what the districts above it require.
A step names the approver role, where that role is resolved, a quorum, an optional deadline
with a reminder and an escalation target, and an optional condition that adds the step only
when the subject matches it, and whether it accepts outside reviewers.

Outside review is the step's to allow: a step without ``outside_review`` takes no outside
reviewer at all. With it, one of the step's eligible approvers (never the author, nor a
delegate of the author) may invite an agency or outside counsel; their answers are advice
shown to the approvers unless ``counts_towards_quorum`` makes them decisions of the step.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from chassis.principal import DISTRICT_ID_PATTERN
from services.approvals.vocabulary import OutsideReviewMode, QuorumMode, SubjectKind

# The roles that approve; a step naming another is refused (422).
APPROVER_ROLES = ("regional_manager", "district_manager", "approver", "brand", "legal")

# Where a step's role is resolved, relative to the subject's district: the subject's district
# itself, the district owning the policy, the subject district's parent, or the top of the tree.
ResolveAt = Literal["subject", "policy", "parent", "root"]
StepKey = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]


class Quorum(BaseModel):
    """``any``: one approval; ``all``: every person on the approver roster for the role there
    (at least one); ``count``: that many distinct approvers."""

    model_config = ConfigDict(extra="forbid")

    mode: QuorumMode = "any"
    count: int | None = Field(default=None, ge=1, le=50)


class Escalation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str = Field(max_length=64)
    resolve_at: ResolveAt = "parent"


class Condition(BaseModel):
    """The step is added when any of these matches (case-insensitive keywords, regular
    expressions, targeted platforms, campaign tags)."""

    model_config = ConfigDict(extra="forbid")

    keywords: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=200
    )
    patterns: list[Annotated[str, Field(min_length=1, max_length=300)]] = Field(
        default_factory=list, max_length=50
    )
    platforms: list[Annotated[str, Field(min_length=1, max_length=32)]] = Field(
        default_factory=list, max_length=20
    )
    campaign_tags: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=50
    )


class OutsideReview(BaseModel):
    """The step accepts outside reviewers, invited by one of its eligible approvers through a
    single-use link. Their answers are advisory (shown to the approvers, never a decision)
    unless `counts_towards_quorum`: then each answer is a decision of the step, an approval
    counts towards its quorum and a rejection closes the request."""

    model_config = ConfigDict(extra="forbid")

    counts_towards_quorum: bool = False

    @property
    def mode(self) -> OutsideReviewMode:
        return (
            OutsideReviewMode.COUNTED if self.counts_towards_quorum else OutsideReviewMode.ADVISORY
        )


class StepSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: StepKey = Field(description="Unique along the district's chain of policies")
    name: str = Field(min_length=1, max_length=200)
    role: str = Field(max_length=64, description=f"One of {', '.join(APPROVER_ROLES)}")
    exact_role: bool = Field(
        default=False,
        description="Only holders of this very role decide. By default a role that includes "
        "it decides too (a regional manager decides a district_manager step)",
    )
    resolve_at: ResolveAt = "subject"
    quorum: Quorum = Field(default_factory=Quorum)
    deadline_hours: int | None = Field(default=None, ge=1, le=24 * 60)
    remind_before_hours: int | None = Field(default=None, ge=1, le=24 * 30)
    escalate_to: Escalation | None = None
    when: Condition | None = None
    outside_review: OutsideReview | None = Field(
        default=None,
        description="Left out: the step takes no outside reviewer. `{}`: it takes them, and "
        'their answers are advisory; `{"counts_towards_quorum": true}`: their answers are '
        "decisions of the step",
    )


class SubjectFacts(BaseModel):
    """What routing looks at in a subject."""

    subject_kind: SubjectKind
    texts: list[str] = Field(default_factory=list, description="Master text, variants, title")
    platforms: list[str] = Field(default_factory=list)
    campaign_tags: list[str] = Field(default_factory=list)


class PlannedStep(BaseModel):
    """A step of a request's plan, resolved for the subject's district."""

    key: str
    name: str
    role: str
    exact_role: bool = Field(default=False, description="Only holders of this very role decide")
    district_id: str = Field(description="Where the role is resolved")
    quorum_mode: str
    quorum_count: int
    deadline_hours: int | None
    remind_before_hours: int | None
    escalate_to_role: str | None
    escalate_to_district_id: str | None
    reasons: list[str] = Field(description="Why the step is there")
    policy_id: uuid.UUID | None
    policy_district_id: str | None
    outside_review: OutsideReviewMode = Field(
        default=OutsideReviewMode.NONE,
        description="none: no outside reviewer; advisory: their answers are shown to the "
        "approvers; counted: their answers are decisions of the step",
    )


class PolicyUse(BaseModel):
    policy_id: uuid.UUID
    district_id: str | None
    version: int


class Plan(BaseModel):
    steps: list[PlannedStep]
    policy_versions: list[PolicyUse]


# --- The policy, roster and dry-run API (the models above are pinned: others use them). ---

DistrictId = Annotated[str, Field(pattern=DISTRICT_ID_PATTERN)]
PersonId = Annotated[str, Field(min_length=1, max_length=200)]
MAX_STEPS = 50


class PolicyPut(BaseModel):
    """A policy's steps as a whole: each PUT writes a new version."""

    model_config = ConfigDict(extra="forbid")

    steps: list[StepSpec] = Field(
        max_length=MAX_STEPS,
        description="Ordered; added after the steps of the policies above (at least one)",
    )
    description: str | None = Field(default=None, max_length=2000)


class PolicyVersionInfo(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    description: str | None
    created_by: str
    created_at: datetime


class PolicyVersionOut(PolicyVersionInfo):
    policy_id: uuid.UUID
    steps: list[StepSpec]


class PolicyOut(BaseModel):
    """A policy with the steps and description of its current version."""

    id: uuid.UUID
    district_id: str | None = Field(description="null: company-wide")
    subject_kind: SubjectKind
    current_version: int
    steps: list[StepSpec]
    description: str | None
    retired_at: datetime | None = Field(description="A retired policy adds no steps any more")
    created_by: str
    created_at: datetime
    updated_by: str = Field(description="Who wrote the current version")
    updated_at: datetime


class PolicyDetail(PolicyOut):
    versions: list[PolicyVersionInfo] = Field(description="Every version, oldest first")


class EffectiveStep(StepSpec):
    """A step of a district's merged chain, with the policy it comes from."""

    policy_id: uuid.UUID
    policy_district_id: str | None = Field(description="null: the company-wide policy")
    policy_version: int


class EffectivePolicy(BaseModel):
    district_id: str
    subject_kind: SubjectKind
    steps: list[EffectiveStep] = Field(
        description="Company-wide first, then each ancestor's from the top, then the district's"
    )
    policies: list[PolicyUse]


class Variant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    platform: str = Field(min_length=1, max_length=32)
    text: str = Field(default="", max_length=20_000)


class DryRun(BaseModel):
    """A subject as routing sees it: which steps would it need, and why."""

    model_config = ConfigDict(extra="forbid")

    district_id: DistrictId
    subject_kind: SubjectKind = SubjectKind.POST
    text: str = Field(default="", max_length=20_000)
    title: str | None = Field(default=None, max_length=500)
    variants: list[Variant] = Field(default_factory=list, max_length=20)
    platforms: list[Annotated[str, Field(min_length=1, max_length=32)]] = Field(
        default_factory=list, max_length=20
    )
    campaign_tags: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=50
    )

    def facts(self) -> SubjectFacts:
        texts = [self.text, *(v.text for v in self.variants)]
        if self.title:
            texts.append(self.title)
        platforms = [*self.platforms, *(v.platform for v in self.variants)]
        return SubjectFacts(
            subject_kind=self.subject_kind,
            texts=[t for t in texts if t],
            platforms=list(dict.fromkeys(platforms)),
            campaign_tags=self.campaign_tags,
        )


class RosterPut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    people: list[PersonId] = Field(
        max_length=500, description="User ids holding the role there; replaces the list"
    )


class RosterOut(BaseModel):
    district_id: str
    role: str
    people: list[str] = Field(description="Active entries, sorted")
