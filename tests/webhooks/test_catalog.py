"""The delivering consumer reads every event type the services publish: the chassis's consumer
dispatches by exact type, so a type missing from the list would never be delivered."""

from __future__ import annotations

from importlib import import_module

from services.webhooks.deliveries.handlers import DELIVERABLE_TYPES, SOURCES


def test_every_published_event_type_is_delivered() -> None:
    published = {
        import_module(f"services.{service}.events").catalog.type_of_model(model)
        for service in SOURCES
        for model in import_module(f"services.{service}.events").catalog
    }
    assert published - set(DELIVERABLE_TYPES) == set()
    assert {t.split(".")[1] for t in DELIVERABLE_TYPES} <= set(SOURCES)
