"""Settings of the calendar service: every value from ``CALENDAR_*`` variables."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from chassis.settings import ServiceSettings

MIB = 1024 * 1024


def default_asset_dir() -> Path:
    """Under the state folder of the `chorus` command (``CHORUS_STATE_DIR``, ``.chorus``)."""
    return Path(os.environ.get("CHORUS_STATE_DIR", ".chorus")) / "calendar" / "assets"


class CalendarSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CALENDAR_")

    service_name: str = "calendar"

    # The asset library (services/calendar/assets).
    asset_max_bytes: int = Field(
        default=25 * MIB,
        ge=1024,
        le=5 * 1024 * MIB,
        description="Largest file an upload may carry; a longer upload is refused with 413",
    )
    asset_storage: Literal["local", "s3"] = Field(
        default="local",
        description="Where asset bytes live: a local folder, or an S3-compatible bucket",
    )
    asset_dir: Path = Field(
        default_factory=default_asset_dir,
        description="The folder of local storage (created when the storage starts)",
    )
    asset_s3_endpoint_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
        description="S3-compatible server (MinIO, Ceph, R2...); None: AWS's own endpoint",
    )
    asset_s3_bucket: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
        description="The bucket; required with asset_storage=s3",
    )
    asset_s3_region: str = Field(default="us-east-1", pattern=r"^[a-z0-9-]{2,32}$")
    asset_s3_prefix: str = Field(
        default="assets/",
        max_length=200,
        pattern=r"^([A-Za-z0-9._-]+/)*$",
        description="Key prefix of the objects in the bucket, empty or ending with '/'",
    )
    asset_s3_access_key_id: SecretStr | None = Field(
        default=None, description="With the secret; both None: the default AWS credential chain"
    )
    asset_s3_secret_access_key: SecretStr | None = None
    asset_s3_path_style: bool = Field(
        default=True,
        description="Path-style addressing (endpoint/bucket/key), which most S3-compatible "
        "servers need; off for virtual-hosted style",
    )

    # Feed tokens (services/calendar/feeds): a feed URL is a bearer credential that calendar
    # clients keep for years, so every token expires and is renewed on purpose.
    feed_token_default_days: int = Field(
        default=90,
        ge=1,
        le=3660,
        description="Days a feed token lives when its creator or renewer asks for no other",
    )
    feed_token_max_days: int = Field(
        default=365,
        ge=1,
        le=3660,
        description="Most days a feed token may be given at creation or renewal",
    )

    @model_validator(mode="after")
    def _feed_token_lifetime(self) -> CalendarSettings:
        if self.feed_token_default_days > self.feed_token_max_days:
            raise ValueError("feed_token_default_days must not exceed feed_token_max_days")
        return self

    @model_validator(mode="after")
    def _asset_storage_complete(self) -> CalendarSettings:
        if self.asset_storage == "s3" and self.asset_s3_bucket is None:
            raise ValueError("asset_storage=s3 needs asset_s3_bucket")
        if (self.asset_s3_access_key_id is None) != (self.asset_s3_secret_access_key is None):
            raise ValueError("give both asset_s3_access_key_id and asset_s3_secret_access_key")
        return self
