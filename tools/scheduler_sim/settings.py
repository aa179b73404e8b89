"""The simulator's settings, every one from a ``SCHEDULER_SIM_*`` environment variable.

Both secrets are Standard Webhooks secrets (``whsec_`` + base64); one that the
``standardwebhooks`` package cannot use is refused at start, not at the first delivery.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from standardwebhooks.webhooks import Webhook


class SchedulerSimSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SCHEDULER_SIM_")

    host: str = Field(default="127.0.0.1", description="The address to listen on")
    port: int = Field(default=8090, ge=0, le=65535, description="The port to listen on")
    inbound_secret: SecretStr = Field(
        description="The whsec_ secret Chorus signs its deliveries with (the endpoint's secret)"
    )
    callback_url: str | None = Field(
        default=None, description="Where callbacks are POSTed; none: they are only logged"
    )
    callback_secret: SecretStr = Field(description="The whsec_ secret callbacks are signed with")
    fast_mode: bool = Field(
        default=False, description="Publish every message at once instead of at its send time"
    )
    failure_marker: str = Field(
        default="#fail",
        min_length=1,
        description="A message whose text contains it (any case) fails instead of being sent",
    )
    poll_interval_seconds: float = Field(
        default=1.0, gt=0, description="How often due messages are looked for"
    )
    callback_attempts: int = Field(
        default=5, ge=1, description="Attempts per callback before it is given up"
    )
    callback_backoff_seconds: float = Field(
        default=1.0, ge=0, description="Wait before the 2nd attempt; doubles after each failure"
    )
    callback_timeout_seconds: float = Field(default=10.0, gt=0)
    analytics_time_constant_seconds: float = Field(
        default=6 * 3600.0,
        gt=0,
        description="Metrics reach 63% of their final value this long after sending",
    )
    analytics_push_interval_seconds: float = Field(
        default=0.0,
        ge=0,
        description="How often analytics.updated is pushed for every sent message; 0: never",
    )

    @field_validator("inbound_secret", "callback_secret")
    @classmethod
    def _usable_secret(cls, secret: SecretStr) -> SecretStr:
        try:
            Webhook(secret.get_secret_value())
        except Exception as error:  # the package raises several kinds for a bad secret
            raise ValueError("not a Standard Webhooks secret (whsec_ + base64)") from error
        return secret
