"""The calendar service's FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from chassis.app import create_service_app
from services.calendar.api import public_router, router
from services.calendar.assets.storage import install as install_asset_storage
from services.calendar.consumers import consumers
from services.calendar.models import districts, messaging
from services.calendar.settings import CalendarSettings

SERVICE_DESCRIPTION = (
    "Editorial calendars, campaigns, posts with per-platform variants, the asset library, the "
    "style guide and its checks, blackout periods and iCalendar feeds."
)


def create_app(settings: CalendarSettings | None = None) -> FastAPI:
    return create_service_app(
        settings=settings or CalendarSettings(),  # internal_key comes from the environment
        title="Chorus calendar",
        description=SERVICE_DESCRIPTION,
        router=router,
        districts=districts,
        messaging=messaging,
        consumers=consumers,
        public_router=public_router,
        configure=install_asset_storage,
    )
