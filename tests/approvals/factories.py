"""Factories of the approvals tests: the small organisation of the district replica, the
people acting in it, and the events and calls that open, decide and read requests. Every
test module of the folder builds its data from here."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from chassis.events import CloudEvent
from services.approvals.models import districts
from services.approvals.requests.handlers import CALENDAR_HANDLERS, INVENTORY_HANDLERS
from tests.kit import RunningService, as_user, replicate_districts

CENTRAL = as_user("regina", hq="regional_manager")
FR_MANAGER = as_user("francois", fr="district_manager")
FR_MANAGER_2 = as_user("florence", fr="district_manager")
FR_WRITER = as_user("fanny", fr="contributor")
FR_LEGAL = as_user("louis", fr="legal")
HQ_LEGAL = as_user("laura", hq="legal")
HQ_BRAND = as_user("bruno", hq="brand")
PARIS_MANAGER = as_user("paul", **{"fr-paris": "district_manager"})
DE_MANAGER = as_user("dieter", de="district_manager")
FR_VIEWER = as_user("victor", fr="viewer")


async def seed_districts(service: RunningService) -> None:
    await replicate_districts(service, districts)


def submitted(post_id: uuid.UUID | None = None, **data: Any) -> CloudEvent:
    """A post.submitted as calendar publishes it."""
    post_id = post_id or uuid.uuid4()
    body = {
        "id": str(post_id),
        "subject_kind": "post",
        "kind": "post",
        "district_id": "fr",
        "district_path": "hq.fr",
        "title": "Spring launch",
        "text": "Our spring collection is here.",
        "variants": [],
        "platforms": ["x"],
        "account_ids": [str(uuid.uuid4())],
        "campaign_tags": [],
        "publish_at": (datetime.now(UTC) + timedelta(days=3)).isoformat(),
        "timezone": "Europe/Paris",
        "author": "fanny",
        "content_hash": uuid.uuid4().hex * 2,
        "version": 2,
        **data,
    }
    return CloudEvent(
        source="/services/calendar",
        type="chorus.calendar.post.submitted",
        subject=str(post_id),
        data=body,
    )


async def deliver(service: RunningService, event: CloudEvent) -> None:
    """Run the consumer's handler for the event, in one transaction as the consumer does."""
    handler = {**CALENDAR_HANDLERS, **INVENTORY_HANDLERS}[event.type]
    async with service.sessions.begin() as session:
        await handler(session, event)


async def set_policy(
    service: RunningService,
    steps: list[dict[str, Any]],
    district_id: str | None = "fr",
    headers: dict[str, str] = FR_MANAGER,
    kind: str = "post",
) -> None:
    params = {"district_id": district_id} if district_id else {}
    response = await service.client.put(
        f"/policies/{kind}", params=params, json={"steps": steps}, headers=headers
    )
    assert response.status_code in (200, 201), response.text


async def open_request(service: RunningService, **data: Any) -> dict[str, Any]:
    event = submitted(**data)
    await deliver(service, event)
    response = await service.client.get(
        "/requests", params={"subject_id": event.data["id"], "status": "open"}, headers=CENTRAL
    )
    [summary] = response.json()["items"]
    detail = await service.client.get(f"/requests/{summary['id']}", headers=CENTRAL)
    result: dict[str, Any] = detail.json()
    return result


async def decide(
    service: RunningService,
    request_id: str,
    headers: dict[str, str],
    outcome: str = "approve",
    **body: Any,
) -> Any:
    extra = {"comment": "Not like this"} if outcome != "approve" else {}
    key = body.pop("key", None)
    return await service.client.post(
        f"/requests/{request_id}/decisions",
        json={"outcome": outcome, **extra, **body},
        headers={**headers, **({"Idempotency-Key": key} if key else {})},
    )


async def get(service: RunningService, request_id: str) -> dict[str, Any]:
    response = await service.client.get(f"/requests/{request_id}", headers=CENTRAL)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result
