"""Settings of the metrics service: every value from ``METRICS_*`` variables."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import SettingsConfigDict

from chassis.settings import ServiceSettings


class MetricsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="METRICS_", extra="ignore", frozen=True)

    service_name: str = "metrics"
    database_url: str = "postgresql+asyncpg://postgres@localhost:5432/chorus_metrics"


@lru_cache
def get_settings() -> MetricsSettings:
    return MetricsSettings()  # internal_key comes from the environment
