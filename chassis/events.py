"""The CloudEvents 1.0 envelope (structured JSON mode) every Chorus event travels in.

``type`` is ``chorus.<service>.<aggregate>.<verb>``, ``source`` is ``/services/<service>``,
``subject`` is the aggregate id and also the Kafka key, so one aggregate's events share a
partition and keep their order.

What a service publishes is declared, never improvised: each event type is one ``EventData``
model (named in the past tense, ``published_as`` its ``<aggregate>.<verb>``), and the service's
``EventCatalog`` lists them. The outbox publisher takes only models of its catalog, so the
AsyncAPI document built from the catalog (``chassis.asyncapi``) names every type the service
can emit, with the shape of its data.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

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


class EventData(BaseModel):
    """The data of one published event type. A subclass per type sets ``published_as``
    (``"post.submitted"``); its docstring is the event's summary in the AsyncAPI document.

    Unknown fields are refused when the event is built: a publisher cannot send what its
    model does not declare. Consumers, for their part, read only the fields they need."""

    # Serialised, a field with a default is always present, so the schema says it is required.
    model_config = ConfigDict(
        frozen=True, extra="forbid", json_schema_serialization_defaults_required=True
    )

    published_as: ClassVar[str]

    @classmethod
    def aggregate_and_verb(cls) -> tuple[str, str]:
        aggregate, _, verb = cls.published_as.partition(".")
        return aggregate, verb


class UndeclaredEvent(LookupError):
    """An event model the publishing service's catalog does not list."""


class EventCatalog:
    """The event types a service publishes, one model each, on ``chorus.<service>.events``."""

    def __init__(self, service: str, events: Sequence[type[EventData]]) -> None:
        self.service = service
        self._types: dict[type[EventData], str] = {}
        for model in events:
            aggregate, verb = model.aggregate_and_verb()
            name = event_type(service, aggregate, verb)
            if name in self._types.values():
                raise ValueError(f"{name} is declared twice")
            self._types[model] = name
        self.source = event_source(service)

    def __iter__(self) -> Iterator[type[EventData]]:
        return iter(self._types)

    def __len__(self) -> int:
        return len(self._types)

    def type_of(self, data: EventData) -> str:
        """The full event type of a model instance; an undeclared model is refused."""
        return self.type_of_model(type(data))

    def type_of_model(self, model: type[EventData]) -> str:
        try:
            return self._types[model]
        except KeyError:
            raise UndeclaredEvent(
                f"{model.__name__} is not among the events {self.service} publishes"
            ) from None

    def envelope(self, subject: str, data: EventData, traceparent: str | None) -> CloudEvent:
        return CloudEvent(
            source=self.source,
            type=self.type_of(data),
            subject=subject,
            data=data.model_dump(mode="json"),
            traceparent=traceparent,
        )
