"""Request and response models of approval requests and decisions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.approvals.vocabulary import (
    Outcome,
    OutsideReviewMode,
    RequestStatus,
    StepStatus,
    SubjectKind,
    Via,
)

# The longest comment a decider, or an outside reviewer, may give.
MAX_COMMENT = 2000


def says_why(outcome: Outcome, comment: str | None) -> bool:
    """Whether an answer says what it must: a rejection or a request for changes needs a
    comment that is more than blanks; an approval needs none."""
    return outcome == Outcome.APPROVE or bool(comment and comment.strip())


class StepOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    position: int
    key: str
    name: str
    role: str
    exact_role: bool = Field(description="Only holders of this very role decide")
    district_id: str
    quorum_mode: str
    quorum_count: int
    approvals: int
    status: StepStatus
    reasons: list[str]
    due_at: datetime | None
    escalated_at: datetime | None
    escalate_to_role: str | None
    escalate_to_district_id: str | None
    outside_review: OutsideReviewMode = Field(
        description="none: takes no outside reviewer; advisory: their answers are advice "
        "(`advisory_answers`); counted: their answers are decisions of the step"
    )


class AdvisoryAnswerOut(BaseModel):
    """An outside reviewer's answer on an advisory step: shown to the approvers, never a
    decision."""

    model_config = ConfigDict(from_attributes=True)

    invite_id: uuid.UUID = Field(validation_alias="id")
    position: int
    reviewer_name: str
    reviewer_email: str
    invited_by: str = Field(validation_alias="created_by")
    outcome: Outcome
    comment: str | None
    answered_at: datetime = Field(validation_alias="used_at")


class DecisionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    position: int
    decider: str
    acting_for: str | None
    via: Via
    outcome: Outcome
    comment: str | None
    decided_at: datetime


class RequestSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    subject_kind: SubjectKind
    subject_id: uuid.UUID
    district_id: str
    title: str | None
    author: str
    status: RequestStatus
    content_hash: str
    current_position: int | None
    expires_at: datetime | None
    opened_at: datetime
    closed_at: datetime | None


class RequestOut(RequestSummary):
    snapshot: dict[str, Any]
    policy_versions: list[dict[str, Any]]
    steps: list[StepOut]
    decisions: list[DecisionOut]
    advisory_answers: list[AdvisoryAnswerOut] = Field(
        description="Outside reviewers' answers on advisory steps, oldest first: advice for "
        "the approvers, not decisions"
    )


class DecisionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Outcome
    comment: str | None = Field(default=None, max_length=MAX_COMMENT)
    position: int | None = Field(
        default=None,
        ge=0,
        le=10_000,
        description="The step you decide; 409 if it is not the active one",
    )

    @model_validator(mode="after")
    def _why(self) -> DecisionCreate:
        if not says_why(self.outcome, self.comment):
            raise ValueError("say why: a rejection or a request for changes needs a comment")
        return self


class DecisionResult(BaseModel):
    decision: DecisionOut
    request: RequestOut


class PendingItem(BaseModel):
    request: RequestSummary
    step: StepOut


class HistoryEntry(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    action: str
    actor: str
    details: dict[str, Any]
    at: datetime
