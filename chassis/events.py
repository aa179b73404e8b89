"""The CloudEvents 1.0 envelope (structured JSON mode) every Chorus event travels in.

``type`` is ``chorus.<service>.<aggregate>.<verb>``, ``source`` is ``/services/<service>``,
``subject`` is the aggregate id and also the Kafka key, so one aggregate's events share a
partition and keep their order.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

EVENT_TYPE_PATTERN = re.compile(r"^chorus\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 envelope. Unknown attributes (extensions) are kept, never rejected."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: str = "1.0"
    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    source: str
    type: str
    subject: str
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    datacontenttype: str = "application/json"
    data: dict[str, Any] = Field(default_factory=dict)
    # W3C trace context of the request that caused the event (CloudEvents distributed tracing).
    traceparent: str | None = None

    @field_validator("specversion")
    @classmethod
    def _only_1_0(cls, value: str) -> str:
        if value != "1.0":
            raise ValueError("only CloudEvents specversion 1.0 is understood")
        return value

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> CloudEvent:
        return cls.model_validate_json(raw)


def event_type(service: str, aggregate: str, verb: str) -> str:
    name = f"chorus.{service}.{aggregate}.{verb}"
    if not EVENT_TYPE_PATTERN.match(name):
        raise ValueError(f"not a Chorus event type: {name!r}")
    return name


def event_source(service: str) -> str:
    return f"/services/{service}"
