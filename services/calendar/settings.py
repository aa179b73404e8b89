"""Settings of the calendar service: every value from ``CALENDAR_*`` variables."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import SettingsConfigDict

from chassis.settings import ServiceSettings


class CalendarSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CALENDAR_", extra="ignore", frozen=True)

    service_name: str = "calendar"
    database_url: str = "postgresql+asyncpg://postgres@localhost:5432/chorus_calendar"


@lru_cache
def get_settings() -> CalendarSettings:
    return CalendarSettings()  # internal_key comes from the environment
