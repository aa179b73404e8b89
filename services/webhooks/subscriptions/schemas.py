"""Request and response models of endpoints (subscriptions)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.webhooks.vocabulary import AuditAction, DisabledReason

# An exact event type, a prefix ending in `.*`, or `*` for everything.
EventTypePattern = Annotated[
    str,
    Field(
        pattern=r"^(\*|chorus(\.[a-z][a-z0-9_]*){0,3}\.\*|chorus(\.[a-z][a-z0-9_]*){3})$",
        max_length=200,
        examples=["chorus.calendar.post.*", "chorus.approvals.approval.escalated", "*"],
    ),
]
Url = Annotated[
    str, Field(min_length=8, max_length=2000, examples=["https://hooks.example.com/chorus"])
]


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url
    event_types: list[EventTypePattern] = Field(min_length=1, max_length=50)
    district_id: str | None = Field(
        default=None,
        max_length=200,
        description="Only events of this district and below it; none: every event, those "
        "of no district included (the central team's)",
    )
    description: str | None = Field(default=None, max_length=1000)
    enabled: bool = True


class EndpointUpdate(BaseModel):
    """What to change; fields left out stay. The district is fixed at creation."""

    model_config = ConfigDict(extra="forbid")

    url: Url | None = None
    event_types: list[EventTypePattern] | None = Field(default=None, min_length=1, max_length=50)
    description: str | None = Field(default=None, max_length=1000)
    enabled: bool | None = None


class EndpointOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    event_types: list[str]
    district_id: str | None
    description: str | None
    enabled: bool
    disabled_reason: DisabledReason | None
    failing_since: AwareDatetime | None = Field(description="Since when every attempt failed")
    previous_secret_expires_at: AwareDatetime | None = Field(
        description="Until when the previous secret still signs deliveries (after a rotation)"
    )
    created_by: str
    created_at: AwareDatetime
    updated_at: AwareDatetime


class EndpointCreated(EndpointOut):
    secret: str = Field(description="The signing secret (whsec_...): shown this once")


class SecretRotated(BaseModel):
    secret: str = Field(description="The new signing secret (whsec_...): shown this once")
    previous_secret_expires_at: AwareDatetime | None = Field(
        description="Until when deliveries are signed with the old secret too"
    )


class AuditEntry(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    action: AuditAction
    actor: str
    details: dict[str, Any]
    at: AwareDatetime
