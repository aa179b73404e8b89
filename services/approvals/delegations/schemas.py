"""Request and response models of delegations (out of office)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    computed_field,
    model_validator,
)

from chassis.instants import Instant

# Out of office, not a standing transfer of authority: a longer absence is a change of roles,
# which belongs to the identity provider.
MAX_DELEGATION = timedelta(days=90)
# A user id as the gateway hands it over (the principal's `sub`).
PERSON_PATTERN = r"^[^\x00-\x1f\x7f]+$"
DelegationStatus = Literal["scheduled", "active", "ended", "revoked"]
# Which delegations a list shows: given by the caller, received, or those they manage.
Direction = Literal["given", "received", "managed"]


class DelegationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delegate: str = Field(
        min_length=1,
        max_length=200,
        pattern=PERSON_PATTERN,
        description="The user id of who decides for you during the period",
    )
    starts_at: Instant = Field(description="First instant of the period (inclusive)")
    ends_at: Instant = Field(
        description="End of the period (exclusive); at most 90 days after `starts_at`"
    )
    reason: str | None = Field(default=None, min_length=1, max_length=500)

    @model_validator(mode="after")
    def _period(self) -> DelegationCreate:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.ends_at - self.starts_at > MAX_DELEGATION:
            raise ValueError("a delegation lasts at most 90 days")
        return self


class DelegationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    delegator: str
    delegate: str
    grants: dict[str, list[str]] = Field(
        description="The delegator's roles per district when they delegated: what the "
        "delegate may decide for them"
    )
    starts_at: datetime
    ends_at: datetime
    reason: str | None
    created_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None = Field(
        description="The delegator, or the manager who revoked it (the delegator too when a "
        "role they lost left nothing to delegate)"
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status(self) -> DelegationStatus:
        """Where the delegation stands now."""
        if self.revoked_at is not None:
            return "revoked"
        now = datetime.now(UTC)
        if now < self.starts_at:
            return "scheduled"
        return "active" if now < self.ends_at else "ended"
