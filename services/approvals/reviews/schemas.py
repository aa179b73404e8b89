"""Request and response models of outside reviewers' invites and their answers."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    computed_field,
    model_validator,
)

from services.approvals.requests.schemas import MAX_COMMENT, says_why
from services.approvals.vocabulary import Outcome, RequestStatus

# A practical address check (no email-validator dependency): one @, a dot-atom local part, a
# domain of LDH labels with a dot. Lower-cased: the address names the decider, and nobody
# means two people by OLIVIA@ and olivia@.
_EMAIL = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)


def _email(value: str) -> str:
    value = value.strip()
    if len(value) > 254 or not _EMAIL.match(value):
        raise ValueError("not a valid email address")
    if len(value.rpartition("@")[0]) > 64:
        raise ValueError("not a valid email address")
    return value.lower()


Email = Annotated[str, Field(max_length=320), AfterValidator(_email)]
InviteStatus = Literal["pending", "used", "expired", "revoked"]


class InviteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reviewer_name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")
    reviewer_email: Email = Field(description="Recorded as the decider: `external:<email>`")
    expires_in_hours: int = Field(default=72, ge=1, le=720, description="1 hour to 30 days")


class InviteOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    request_id: uuid.UUID
    position: int
    reviewer_name: str
    reviewer_email: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None
    outcome: Outcome | None = Field(description="The reviewer's answer, once given")
    comment: str | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status(self) -> InviteStatus:
        """Whether the link still works."""
        if self.used_at is not None:
            return "used"
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= datetime.now(UTC) else "pending"


class InviteCreated(InviteOut):
    token: str = Field(description="The secret; shown this once, only its hash is kept")
    url_path: str = Field(
        description="The reviewer's page in the approvals service, /public/reviews/<token>"
    )
    url: str = Field(
        description="The reviewer's page, absolute, through the gateway; send it to the "
        "reviewer, who needs no account"
    )


class PublicReview(BaseModel):
    """What an outside reviewer sees through their link."""

    reviewer_name: str
    request_id: uuid.UUID
    title: str | None
    snapshot: dict[str, Any] = Field(description="What is to be approved, as submitted")
    step_position: int
    step_name: str
    expires_at: datetime = Field(description="The link works until then, once")
    open: bool = Field(
        description="The step still awaits decisions; when false an answer is refused (409)"
    )


class ReviewDecisionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Outcome
    comment: str | None = Field(
        default=None,
        max_length=MAX_COMMENT,
        description="Required to reject or request changes",
    )

    @model_validator(mode="after")
    def _comment_when_not_approving(self) -> ReviewDecisionCreate:
        if not says_why(self.outcome, self.comment):
            raise ValueError("a comment is required to reject or request changes")
        return self


class ReviewDecisionOut(BaseModel):
    outcome: Outcome
    comment: str | None
    decided_at: datetime
    request_status: RequestStatus = Field(description="The request's status after this decision")
    counted: bool = Field(
        description="The answer is a decision of the step (its policy counts outside answers);"
        " false: it is advice shown to the approvers"
    )
