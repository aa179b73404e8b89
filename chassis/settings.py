"""Settings shared by every service; each service subclasses with its own env prefix.

Every value comes from the environment (``<SERVICE>_<FIELD>``, e.g. ``INVENTORY_DATABASE_URL``);
a subclass gives its ``service_name`` and env prefix, and the fields the service adds.
The internal key that signs the principal header has no default: a service that does not know it
cannot tell a forged principal from a real one, so it refuses to start.

``OrganisationSettings`` (``CHORUS_*``) holds what every service must agree on, such as which
districts are the top of the organisation (``CHORUS_CENTRAL_DISTRICTS``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, SecretStr
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    service_name: str = Field(description="Short name, e.g. 'inventory'; names topics and sources")
    database_url: str = Field(
        default_factory=lambda fields: local_database_url(fields["service_name"]),
        description="SQLAlchemy URL of the service's own database (postgresql+asyncpg://...)",
    )
    database_pool_size: int = Field(default=10, ge=1, le=200)
    kafka_bootstrap_servers: str = Field(default="localhost:9092")
    kafka_enable_idempotence: bool = Field(
        default=True,
        description="Idempotent producer; off in the dev run, whose broker has none",
    )
    internal_key: SecretStr = Field(
        description="HMAC key shared with the gateway to verify the principal header",
        min_length=16,
    )
    relay_poll_interval_seconds: float = Field(
        default=5.0, gt=0, description="Fallback outbox poll when no NOTIFY arrives"
    )
    relay_batch_size: int = Field(default=500, ge=1, le=10_000)
    relay_standby_retry_seconds: float = Field(
        default=2.0, gt=0, description="How often a standby relay tries to take the lock"
    )
    job_concurrency: int = Field(default=4, ge=1, le=64, description="Jobs run at once")
    consistency_wait_seconds: float = Field(
        default=2.0,
        ge=0,
        le=10,
        description="Longest wait for the events named by a request's Chorus-Consistency token",
    )
    consumer_max_attempts: int = Field(default=3, ge=1, le=20)
    consumer_retry_backoff_seconds: float = Field(default=0.2, ge=0)
    process_role: Literal["all", "web", "worker"] = Field(
        default="all",
        description="web: HTTP only; worker: also the outbox relay, consumers and jobs; all: both",
    )
    consumer_group_prefix: str | None = Field(
        default=None,
        description="Consumer groups are <prefix>.<consumer>; the service name by default",
    )
    log_level: str = Field(default="INFO")
    public_base_url: str = Field(
        default="http://localhost:8000",
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="The gateway's URL as clients reach it (scheme, host, any path prefix): "
        "every link a service returns starts with it, then /api/<service>",
    )
    max_json_body_bytes: int = Field(default=1024 * 1024, ge=1024, description="JSON bodies")
    max_page_size: int = Field(default=100, ge=1, le=1000)
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Bodies of any other type, unless the route declares more (chassis.guard)",
    )
    database_statement_timeout_seconds: float = Field(
        default=30.0,
        ge=0,
        description="PostgreSQL statement_timeout of the service's sessions; 0 turns it off",
    )
    database_idle_in_transaction_timeout_seconds: float = Field(
        default=60.0,
        ge=0,
        description="PostgreSQL idle_in_transaction_session_timeout of the service's sessions; "
        "0 turns it off",
    )

    @property
    def events_topic(self) -> str:
        return events_topic(self.service_name)

    @property
    def dead_letter_topic(self) -> str:
        return f"chorus.{self.service_name}.dlq"


def local_database_url(service_name: str) -> str:
    """The service's database on a local PostgreSQL (``chorus_<service>``): the default."""
    return f"postgresql+asyncpg://postgres@localhost:5432/chorus_{service_name}"


def events_topic(service_name: str) -> str:
    """One topic per producing service."""
    return f"chorus.{service_name}.events"


def _central_ids(value: object) -> object:
    # A comma-separated list in the environment ("hq" or "hq,holding"); a list from code.
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class OrganisationSettings(BaseSettings):
    """Settings of the organisation that every service shares (``CHORUS_*``), read once by
    the chassis."""

    model_config = SettingsConfigDict(env_prefix="CHORUS_", extra="ignore", frozen=True)

    central_districts: Annotated[tuple[str, ...], NoDecode, BeforeValidator(_central_ids)] = Field(
        default=("hq",),
        min_length=1,
        description="The top district(s) of the organisation, by id (comma-separated): a "
        "regional manager on one of them is the central team, which alone manages what is "
        "company-wide",
    )


@lru_cache
def organisation_settings() -> OrganisationSettings:
    return OrganisationSettings()
