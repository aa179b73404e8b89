"""Settings of the metrics service: every value from ``METRICS_*`` variables."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from chassis.settings import ServiceSettings


class MetricsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="METRICS_")

    service_name: str = "metrics"
