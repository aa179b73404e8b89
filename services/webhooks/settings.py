"""Settings of the webhooks service: every value from ``WEBHOOKS_*`` variables."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import SettingsConfigDict

from chassis.settings import ServiceSettings


class WebhooksSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="WEBHOOKS_", extra="ignore", frozen=True)

    service_name: str = "webhooks"
    database_url: str = "postgresql+asyncpg://postgres@localhost:5432/chorus_webhooks"


@lru_cache
def get_settings() -> WebhooksSettings:
    return WebhooksSettings()  # internal_key comes from the environment
