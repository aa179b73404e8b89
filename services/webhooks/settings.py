"""Settings of the webhooks service: every value from ``WEBHOOKS_*`` variables."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from chassis.settings import ServiceSettings


class WebhooksSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="WEBHOOKS_")

    service_name: str = "webhooks"
