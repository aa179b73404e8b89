"""The CloudEvents envelope as written to the outbox."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from chassis.events import CloudEvent, EventData, UndeclaredEvent, event_type
from chassis.observability import traceparent_var
from tests.chassis.kit import make_service
from tests.conftest import Infrastructure

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.asyncio
async def test_outbox_row_is_a_structured_cloudevent(infrastructure: Infrastructure) -> None:
    service = await make_service(infrastructure, "envelope")
    try:
        token = traceparent_var.set(TRACEPARENT)
        try:
            async with service.sessions() as session, session.begin():
                event = await service.publish(session, "acc-1", handle="@chorus")
        finally:
            traceparent_var.reset(token)
        async with service.sessions() as session:
            row = (await session.execute(select(service.outbox))).one()
        assert row.topic == f"chorus.{service.name}.events"
        assert row.key == "acc-1"
        body = json.loads(row.payload)
        assert body["specversion"] == "1.0"
        assert body["id"] == str(event.id)
        assert body["source"] == f"/services/{service.name}"
        assert body["type"] == f"chorus.{service.name}.thing.changed"
        assert body["subject"] == "acc-1"
        assert body["datacontenttype"] == "application/json"
        assert body["data"] == {"handle": "@chorus"}
        assert body["traceparent"] == TRACEPARENT
        assert CloudEvent.from_json(row.payload) == event
    finally:
        await service.stop()


def test_unknown_attributes_are_kept_and_bad_versions_refused() -> None:
    raw = {
        "specversion": "1.0",
        "id": "7d3c1b7e-3f0a-4c55-9b7e-0c3b7d0e5a21",
        "source": "/services/x",
        "type": "chorus.x.thing.made",
        "subject": "1",
        "time": "2026-11-22T10:00:00Z",
        "futureattribute": "kept",
    }
    event = CloudEvent.model_validate(raw)
    assert json.loads(event.to_json())["futureattribute"] == "kept"
    with pytest.raises(ValidationError):
        CloudEvent.model_validate({**raw, "specversion": "0.3"})


def test_event_type_names_are_checked() -> None:
    assert event_type("inventory", "account", "registered") == "chorus.inventory.account.registered"
    with pytest.raises(ValueError, match="not a Chorus event type"):
        event_type("inventory", "Account", "registered!")


class ThingVanished(EventData):
    """Declared by no catalog of the tests."""

    published_as = "thing.vanished"
    id: str


@pytest.mark.asyncio
async def test_the_publisher_refuses_an_event_its_catalog_does_not_declare(
    infrastructure: Infrastructure,
) -> None:
    """What a service can emit is what its AsyncAPI document lists: nothing else gets in."""
    service = await make_service(infrastructure, "undeclared")
    try:
        async with service.sessions() as session, session.begin():
            with pytest.raises(UndeclaredEvent, match="ThingVanished"):
                await service.publisher.publish(session, ThingVanished(id="t-1"), subject="t-1")
        async with service.sessions() as session:
            assert (await session.execute(select(service.outbox))).all() == []
    finally:
        await service.stop()


def test_an_event_refuses_fields_its_model_does_not_declare() -> None:
    with pytest.raises(ValidationError, match="colour"):
        ThingVanished(id="t-1", colour="red")  # type: ignore[call-arg]
