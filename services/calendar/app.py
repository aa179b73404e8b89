"""The calendar service's FastAPI app: its parts (`chassis.app.ServiceParts`) and settings."""

from __future__ import annotations

from fastapi import FastAPI

from chassis.app import ServiceParts, create_service_app
from services.calendar.settings import CalendarSettings


def create_app(settings: CalendarSettings | None = None) -> FastAPI:
    # Without settings, they come from the environment (the internal key too).
    parts = ServiceParts.of("services.calendar")
    return create_service_app(settings or CalendarSettings(), parts)
