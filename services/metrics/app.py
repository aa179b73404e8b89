"""The metrics service's FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from chassis.app import create_service_app
from services.metrics.api import router
from services.metrics.consumers import consumers
from services.metrics.models import messaging
from services.metrics.settings import MetricsSettings

SERVICE_DESCRIPTION = (
    "KPI definitions, polling schedules, collected samples, rollups up the organisation, "
    "targets, alerts and reports."
)


def create_app(settings: MetricsSettings | None = None) -> FastAPI:
    return create_service_app(
        settings=settings or MetricsSettings(),  # internal_key comes from the environment
        title="Chorus metrics",
        description=SERVICE_DESCRIPTION,
        router=router,
        messaging=messaging,
        consumers=consumers,
    )
