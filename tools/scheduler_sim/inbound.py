"""Chorus's deliveries: verified, de-duplicated, then applied.

Order matters: the signature is checked on the raw body before anything is parsed (401 when
missing, wrong or older than five minutes; the ``standardwebhooks`` package checks all three,
and accepts the delivery if any of the signatures it carries is valid, as during a rotation of
Chorus's secret). Only then is ``webhook-id`` looked up: a delivery already applied is
acknowledged again with no second effect. A body that is not a CloudEvent, or whose data does
not fit its type, is 400 and is not remembered. Event types the simulator does not act on are
acknowledged and ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tools.scheduler_sim.schemas import ChorusEvent, PostRef, ScheduledPost
from tools.scheduler_sim.service import Scheduler
from tools.scheduler_sim.vocabulary import TAKE_BACK_EVENTS, ChorusEventType

Model = TypeVar("Model", bound=BaseModel)


class DeliveryRefused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def verify(webhook: Webhook, body: bytes, headers: Mapping[str, str]) -> None:
    try:
        webhook.verify(body, dict(headers), json_parse=False)
    except WebhookVerificationError as error:
        raise DeliveryRefused(401, "INVALID_SIGNATURE", str(error)) from None
    except ValueError:
        # The package lets a malformed signature header or a non UTF-8 body escape as these.
        raise DeliveryRefused(401, "INVALID_SIGNATURE", "Malformed signature headers") from None


def _parse(model: type[Model], value: Any, what: str) -> Model:
    try:
        return model.model_validate(value)
    except ValidationError as error:
        detail = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in error.errors()
        )
        raise DeliveryRefused(400, "MALFORMED", f"{what}: {detail}") from None


def receive(
    scheduler: Scheduler, webhook: Webhook, body: bytes, headers: Mapping[str, str]
) -> dict[str, Any]:
    """Apply one delivery; what happened, for the response body."""
    verify(webhook, body, headers)
    webhook_id = headers["webhook-id"]
    if scheduler.store.seen(webhook_id):
        return {"status": "duplicate"}
    try:
        raw = ChorusEvent.model_validate_json(body)
    except ValidationError as error:
        raise DeliveryRefused(
            400, "MALFORMED", f"not a CloudEvent: {error.errors()[0]['msg']}"
        ) from None
    outcome = _apply(scheduler, raw)
    scheduler.store.remember(webhook_id)
    return outcome


def _apply(scheduler: Scheduler, event: ChorusEvent) -> dict[str, Any]:
    if event.type == ChorusEventType.POST_SCHEDULED:
        post = _parse(ScheduledPost, event.data, event.type)
        created = scheduler.schedule(event, post)
        return {"status": "scheduled", "messageIds": [m.id for m in created]}
    if event.type in TAKE_BACK_EVENTS:
        ref = _parse(PostRef, event.data, event.type)
        cancelled = scheduler.take_back(event, ref)
        return {"status": "cancelled", "messageIds": [m.id for m in cancelled]}
    return {"status": "ignored"}
