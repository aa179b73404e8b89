"""Settings of the webhooks service: every value from ``WEBHOOKS_*`` variables."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from chassis.settings import ServiceSettings


class WebhooksSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="WEBHOOKS_")

    service_name: str = "webhooks"
    allow_list: list[str] = Field(
        default_factory=list,
        description="Hosts and CIDRs the address guard lets through although they are private "
        "or loopback (a local receiver, the scheduler simulator), and that may use http:// "
        '(JSON list, e.g. ["127.0.0.1/32", "sim.internal"])',
    )
    secrets_key: SecretStr | None = Field(
        default=None,
        description="Key that encrypts the endpoints' signing secrets at rest (any string of "
        "16+ characters); derived from the internal key when unset",
        min_length=16,
    )
    secret_rotation_overlap_hours: float = Field(
        default=24,
        ge=0,
        le=24 * 7,
        description="How long a rotated secret still signs deliveries, beside the new one",
    )
    delivery_timeout_seconds: float = Field(
        default=15, gt=0, le=60, description="An attempt's whole time, connecting included"
    )
    delivery_concurrency: int = Field(
        default=16, ge=1, le=64, description="Deliveries a worker process runs at once"
    )
    endpoint_concurrency: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Deliveries to one endpoint at once in a worker process; the rest wait "
        "their turn without holding a worker slot",
    )
    response_excerpt_bytes: int = Field(
        default=1024, ge=0, le=64 * 1024, description="What the delivery log keeps of a response"
    )
    failing_disable_days: float = Field(
        default=5, gt=0, description="An endpoint failing this long, without a success, is disabled"
    )
    attempt_retention_days: int = Field(
        default=30, ge=1, description="How long the delivery log keeps attempts"
    )
    prune_cron: str = Field(
        default="17 * * * *", description="When old attempts are pruned (cron; hourly)"
    )
