"""Settings of the approvals service: every value from ``APPROVALS_*`` variables."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from chassis.settings import ServiceSettings


class ApprovalsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="APPROVALS_", extra="ignore", frozen=True)

    service_name: str = "approvals"
    database_url: str = "postgresql+asyncpg://postgres@localhost:5432/chorus_approvals"
    deadline_sweep_cron: str = Field(
        default="* * * * *",
        description="When reminders, escalations and expiry are swept (cron; every minute)",
    )


@lru_cache
def get_settings() -> ApprovalsSettings:
    return ApprovalsSettings()  # internal_key comes from the environment
