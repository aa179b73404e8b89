"""The inventory service's FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from chassis.app import create_service_app
from services.inventory.api import router
from services.inventory.consumers import consumers
from services.inventory.jobs import periodic_jobs
from services.inventory.models import District, messaging
from services.inventory.settings import InventorySettings

SERVICE_DESCRIPTION = (
    "Every social account of the organisation, official or not: districts, accounts, owners, "
    "status, takedowns, detection, import and export, and the audit trail."
)


def create_app(settings: InventorySettings | None = None) -> FastAPI:
    return create_service_app(
        settings=settings or InventorySettings(),  # internal_key comes from the environment
        title="Chorus inventory",
        description=SERVICE_DESCRIPTION,
        router=router,
        districts=District.__table__,  # type: ignore[arg-type]
        messaging=messaging,
        consumers=consumers,
        periodic_jobs=periodic_jobs,
    )
