"""Events the webhooks service publishes on `chorus.webhooks.events`, one model each, listed in
`catalog` (the service's `/asyncapi.json` is built from it).

Both are about one endpoint: their subject (and Kafka key) is the endpoint's id. The webhooks
service delivers its own events too, to endpoints that subscribe to them; an endpoint is never
told about its own exhaustion or disabling through itself (a disabled endpoint receives
nothing), but another endpoint (an operator's chat tool) may be.
"""

from __future__ import annotations

import uuid
from typing import ClassVar

from pydantic import AwareDatetime, Field

from chassis.events import EventCatalog, EventData


class EndpointEvent(EventData):
    """What every event about an endpoint carries: the endpoint and its district filter."""

    endpoint_id: uuid.UUID
    district_id: str | None = Field(description="The endpoint's district filter")


class DeliveryExhausted(EndpointEvent):
    """Every attempt to deliver a message failed: the message will not be retried again unless
    it is replayed."""

    published_as: ClassVar[str] = "webhook.delivery_exhausted"

    message_id: uuid.UUID
    event_id: uuid.UUID = Field(description="The id of the event that was not delivered")
    event_type: str
    attempts: int
    last_status_code: int | None = Field(description="The last answer's status, if any")
    last_error: str | None


class EndpointDisabled(EndpointEvent):
    """An endpoint stopped receiving: the receiver answered 410 Gone, or every attempt failed
    for the whole failure window."""

    published_as: ClassVar[str] = "webhook.endpoint_disabled"

    url: str
    reason: str = Field(description="gone (410) or failing")
    failing_since: AwareDatetime | None


catalog = EventCatalog("webhooks", [DeliveryExhausted, EndpointDisabled])
