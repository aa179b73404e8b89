"""Gateway settings, every value from ``GATEWAY_*`` variables.

Authentication: HS256 with ``GATEWAY_JWT_SECRET`` (the embedded run), or RS256 with keys from
``GATEWAY_JWKS_URL`` (an identity provider in production). At least one must be set.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICES = ("inventory", "calendar", "approvals", "metrics", "webhooks")


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", frozen=True)

    internal_key: SecretStr = Field(
        min_length=16, description="HMAC key that signs the principal header for the services"
    )
    jwt_secret: SecretStr | None = Field(
        default=None, min_length=16, description="HS256 secret (the embedded run)"
    )
    jwks_url: str | None = Field(default=None, description="JWKS URL for RS256 tokens")
    jwks_cache_seconds: int = Field(default=300, ge=10)
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=300)

    inventory_url: str = "http://localhost:8101"
    calendar_url: str = "http://localhost:8102"
    approvals_url: str = "http://localhost:8103"
    metrics_url: str = "http://localhost:8104"
    webhooks_url: str = "http://localhost:8105"

    connect_timeout_seconds: float = Field(default=3.0, gt=0)
    upstream_timeout_seconds: float = Field(
        default=30.0, gt=0, description="Longest wait for the upstream to start answering"
    )
    max_connections: int = Field(default=200, ge=1)
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _one_way_to_verify(self) -> GatewaySettings:
        if self.jwt_secret is None and self.jwks_url is None:
            raise ValueError("set GATEWAY_JWT_SECRET or GATEWAY_JWKS_URL")
        return self

    def upstreams(self) -> dict[str, str]:
        return {name: str(getattr(self, f"{name}_url")).rstrip("/") for name in SERVICES}


@lru_cache
def get_settings() -> GatewaySettings:
    return GatewaySettings()  # internal_key comes from the environment
