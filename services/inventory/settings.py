"""Settings of the inventory service: every value from ``INVENTORY_*`` variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from chassis.settings import ServiceSettings


class InventorySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INVENTORY_")

    service_name: str = "inventory"

    availability_probe_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    availability_probe_concurrency: int = Field(default=8, ge=1, le=64)
    availability_user_agent: str = "Chorus handle availability check"
    availability_checks_per_minute: int = Field(
        default=30,
        ge=1,
        description="Availability checks (each probing up to every platform) per user and"
        " minute, counted per web process",
    )
    dormant_scan_cron: str = Field(default="17 3 * * *", description="When dormancy is checked")
    duplicate_scan_cron: str = Field(default="47 3 * * *", description="Near-duplicate scan")
    orphaned_scan_cron: str = Field(default="7 4 * * *", description="Orphaned-account scan")
    duplicate_similarity_threshold: float = Field(default=0.6, gt=0, le=1)
    import_max_rows: int = Field(default=200_000, ge=1)
    import_max_bytes: int = Field(default=100 * 1024 * 1024, ge=1)
