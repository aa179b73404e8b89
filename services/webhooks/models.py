"""Tables of the webhooks service (one metadata, for its own Alembic).

An endpoint (a subscription) keeps its signing secret encrypted (``signing``): a dump of the
database alone does not give the secrets away. During a rotation's overlap it keeps the previous
secret too, until ``previous_secret_expires_at``. Every change to an endpoint is a row of
``endpoint_audit`` (append-only).

A message is one event for one endpoint, stored with the CloudEvent it carries before anything
is sent: (endpoint, event id) is unique, so an event redelivered by the broker stores nothing
twice. ``next_attempt_at`` is when its pending delivery job is due, ``job_token`` names that
job: a job carrying another token is stale and does nothing. Attempts are the delivery log,
pruned after the retention.

``districts`` is the replica of inventory's tree, kept by the chassis's district replica.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, LargeBinary, UniqueConstraint
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from chassis.app import Messaging
from chassis.database import COLUMN_TYPES, InsertedAt, SerialKey, UuidKey, new_metadata, one_of
from chassis.districts import district_replica_table
from services.webhooks.events import catalog
from services.webhooks.vocabulary import AttemptOutcome, DisabledReason, MessageStatus


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = COLUMN_TYPES


districts = district_replica_table(Base.metadata)
messaging = Messaging.of(Base.metadata, catalog)


class Endpoint(Base):
    """Where events are delivered: a URL, the event types and the district subtree it wants."""

    __tablename__ = "endpoints"

    id: Mapped[UuidKey]
    # The subtree whose events it receives; None: every district, and events of none.
    district_id: Mapped[str | None]
    url: Mapped[str]
    description: Mapped[str | None]
    # Patterns: exact types, `prefix.*`, or `*`.
    event_types: Mapped[list[str]] = mapped_column(JSONB)
    enabled: Mapped[bool] = mapped_column(server_default=sql_text("true"))
    disabled_reason: Mapped[str | None]
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    previous_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    previous_secret_expires_at: Mapped[datetime | None]
    # Since when every attempt failed (None: the last one succeeded, or none was made yet).
    failing_since: Mapped[datetime | None]
    created_by: Mapped[str]
    created_at: Mapped[InsertedAt]
    updated_at: Mapped[InsertedAt]
    deleted_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint(
            f"disabled_reason IS NULL OR {one_of('disabled_reason', DisabledReason)}",
            name="disabled_reason",
        ),
        Index("ix_endpoints_district", "district_id", "created_at", "id"),
        # The consumer reads the live endpoints for every event.
        Index(
            "ix_endpoints_live", "id", postgresql_where=sql_text("enabled AND deleted_at IS NULL")
        ),
    )


class EndpointAudit(Base):
    """Everything that happened to an endpoint, by whom. Append-only."""

    __tablename__ = "endpoint_audit"

    id: Mapped[SerialKey]
    endpoint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("endpoints.id"))
    action: Mapped[str]
    actor: Mapped[str]
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=sql_text("'{}'::jsonb"))
    at: Mapped[InsertedAt]

    __table_args__ = (Index("ix_endpoint_audit_endpoint", "endpoint_id", "id"),)


class Message(Base):
    """One event to deliver to one endpoint, and where its delivery stands."""

    __tablename__ = "messages"

    id: Mapped[UuidKey]
    endpoint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("endpoints.id"))
    event_id: Mapped[uuid.UUID]
    event_type: Mapped[str]
    # The CloudEvent, as the body of every attempt.
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(server_default=MessageStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(server_default="0")
    # Names the one delivery job in force: each scheduling bumps it, and a job carrying an
    # older token (a retry overtaken by a replay, a lease's rescue) does nothing.
    job_token: Mapped[int] = mapped_column(server_default="0")
    next_attempt_at: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    created_at: Mapped[InsertedAt]

    __table_args__ = (
        CheckConstraint(one_of("status", MessageStatus), name="status"),
        UniqueConstraint("endpoint_id", "event_id", name="uq_messages_endpoint_event"),
        Index("ix_messages_endpoint", "endpoint_id", "created_at", "id"),
    )


class Attempt(Base):
    """One delivery attempt: the delivery log."""

    __tablename__ = "attempts"

    id: Mapped[SerialKey]
    message_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    endpoint_id: Mapped[uuid.UUID]
    number: Mapped[int]
    outcome: Mapped[str]
    status_code: Mapped[int | None]
    latency_ms: Mapped[int]
    response_excerpt: Mapped[str | None]
    error: Mapped[str | None]
    # The address actually connected to, as the guard checked it.
    address: Mapped[str | None]
    at: Mapped[datetime]

    __table_args__ = (
        CheckConstraint(one_of("outcome", AttemptOutcome), name="outcome"),
        Index("ix_attempts_endpoint", "endpoint_id", "id"),
        Index("ix_attempts_message", "message_id", "id"),
        Index("ix_attempts_at", "at"),
    )
