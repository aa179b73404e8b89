"""The metrics service's FastAPI app: its parts (`chassis.app.ServiceParts`) and settings."""

from __future__ import annotations

from fastapi import FastAPI

from chassis.app import ServiceParts, create_service_app
from services.metrics.settings import MetricsSettings


def create_app(settings: MetricsSettings | None = None) -> FastAPI:
    # Without settings, they come from the environment (the internal key too).
    parts = ServiceParts.of("services.metrics")
    return create_service_app(settings or MetricsSettings(), parts)
