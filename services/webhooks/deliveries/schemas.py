"""Response and request models of the delivery log and replays."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.webhooks.vocabulary import AttemptOutcome, MessageStatus


class MessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: uuid.UUID = Field(description="Also the `webhook-id` of every attempt")
    event_type: str
    status: MessageStatus
    attempts: int = Field(description="Attempts since it was stored or last replayed")
    next_attempt_at: AwareDatetime | None
    last_attempt_at: AwareDatetime | None
    created_at: AwareDatetime


class MessageWithPayload(MessageOut):
    payload: dict[str, Any] = Field(description="The CloudEvent delivered as the body")


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    message_id: uuid.UUID
    endpoint_id: uuid.UUID
    number: int
    outcome: AttemptOutcome
    status_code: int | None
    latency_ms: int
    response_excerpt: str | None = Field(description="The start of the response body (1 KiB)")
    error: str | None = Field(description="Why no answer came: timeout, refused address...")
    address: str | None = Field(description="The address connected to, as checked")
    at: AwareDatetime


class ReplaySince(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: AwareDatetime = Field(description="Failed messages stored since this instant")


class Replayed(BaseModel):
    replayed: int = Field(description="How many failed messages are attempted again")
