"""Settings of the inventory service: every value from ``INVENTORY_*`` variables."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import SettingsConfigDict

from chassis.settings import ServiceSettings


class InventorySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INVENTORY_", extra="ignore", frozen=True)

    service_name: str = "inventory"
    database_url: str = "postgresql+asyncpg://postgres@localhost:5432/chorus_inventory"


@lru_cache
def get_settings() -> InventorySettings:
    return InventorySettings()  # internal_key comes from the environment
