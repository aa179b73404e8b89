"""Settings of the approvals service: every value from ``APPROVALS_*`` variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from chassis.settings import ServiceSettings


class ApprovalsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="APPROVALS_")

    service_name: str = "approvals"
    deadline_sweep_cron: str = Field(
        default="* * * * *",
        description="When reminders, escalations and expiry are swept (cron; every minute)",
    )
    delegation_max_lead_days: int = Field(
        default=90,
        ge=0,
        le=366,
        description="How far ahead a delegation may start (days from now)",
    )
    delegation_max_coverage_days: int = Field(
        default=90,
        ge=1,
        le=366,
        description="How many days one delegator's delegations in force or planned may cover "
        "in all (overlapping periods count once): out of office, not a standing transfer",
    )
