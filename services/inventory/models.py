"""Tables of the inventory service (one metadata, for its own Alembic).

Districts form a tree kept as an ``ltree`` path of district ids, so "this district and
everything below it" is one indexed ``<@`` test. District ids are slugs chosen at creation and
never change (grants in tokens name them); names change by renaming, paths by moving.

Accounts are unique per (platform, handle_key), where handle_key is the handle normalised by
the platform's rules (case folded where the platform ignores case).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from chassis.app import Messaging
from chassis.database import new_metadata, one_of
from chassis.districts import LTree
from services.inventory.events import catalog
from services.inventory.vocabulary import (
    AccountStatus,
    DistrictKind,
    OwnerRole,
    RequestStatus,
    TakedownStatus,
)


def _unique_while(name: str, condition: str, *columns: str) -> Index:
    """A partial unique index: no two rows that meet `condition` (SQL on the table's columns)
    share `columns`."""
    return Index(name, *columns, unique=True, postgresql_where=text(condition))


class Base(DeclarativeBase):
    metadata = new_metadata()


messaging = Messaging.of(Base.metadata, catalog)


class District(Base):
    __tablename__ = "districts"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("districts.id"))
    path: Mapped[str] = mapped_column(LTree)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint(one_of("kind", DistrictKind), name="kind"),
        Index("ix_districts_path", "path", postgresql_using="gist"),
    )


# The district tree the service answers scopes from (``ScopeDep``): its own table.
districts = District.__table__


class Platform(Base):
    """A social platform Chorus knows: its handle rules and profile URL patterns. Adding one is
    a row, not code."""

    __tablename__ = "platforms"

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    # Full-match regex on the handle as given (without a leading @); named groups feed
    # profile_url_template.
    handle_pattern: Mapped[str] = mapped_column(Text)
    case_sensitive: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    profile_url_template: Mapped[str] = mapped_column(Text)
    # Regexes matched against a profile URL (scheme, "www." and "m." removed); named groups
    # build the handle through handle_from_url.
    url_patterns: Mapped[list[str]] = mapped_column(ARRAY(Text))
    handle_from_url: Mapped[str] = mapped_column(Text, server_default="{handle}")
    # Lower runs first when parsing URLs: catch-all patterns (Mastodon's any-domain) go last.
    url_priority: Mapped[int] = mapped_column(Integer, server_default="100")
    dormant_after_days: Mapped[int] = mapped_column(Integer, server_default="90")


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    platform: Mapped[str] = mapped_column(ForeignKey("platforms.key"))
    handle: Mapped[str] = mapped_column(Text)
    handle_key: Mapped[str] = mapped_column(Text)
    profile_url: Mapped[str] = mapped_column(Text)
    display_name: Mapped[str | None] = mapped_column(Text)
    district_id: Mapped[str] = mapped_column(ForeignKey("districts.id"))
    purpose: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(Text)
    country: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    notes: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    duplicate_of: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("accounts.id"))
    last_activity_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # What text search matches: handle and display name, lower-cased, trigram-indexed.
    search_text: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        UniqueConstraint("platform", "handle_key", name="uq_accounts_platform_handle"),
        CheckConstraint(one_of("status", AccountStatus), name="status"),
        CheckConstraint(
            "(status = 'duplicate') = (duplicate_of IS NOT NULL)", name="duplicate_has_original"
        ),
        Index("ix_accounts_district", "district_id", "platform", "handle_key"),
        Index("ix_accounts_status", "status"),
        # The presence summary counts from this index alone (an index-only scan).
        Index("ix_accounts_presence", "district_id", "platform", "status"),
        Index(
            "ix_accounts_search_trgm",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        ),
        Index(
            "ix_accounts_handle_trgm",
            "handle_key",
            postgresql_using="gin",
            postgresql_ops={"handle_key": "gin_trgm_ops"},
        ),
    )


class AccountOwner(Base):
    __tablename__ = "account_owners"

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    person: Mapped[str] = mapped_column(Text, primary_key=True)
    role: Mapped[str] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))

    __table_args__ = (
        CheckConstraint(one_of("role", OwnerRole), name="role"),
        Index("ix_account_owners_person", "person"),
    )


class AccountFlag(Base):
    """A detection finding on an account (near-duplicate, dormant, orphaned), until resolved."""

    __tablename__ = "account_flags"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(Text)
    score: Mapped[float | None] = mapped_column(Float)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        # One open flag per account and reason (and other account, for near-duplicates).
        Index(
            "uq_account_flags_open",
            "account_id",
            "reason",
            text("(details->>'other_account_id')"),
            unique=True,
            # Dormant and orphaned flags have no other account: NULLs must count as equal.
            postgresql_nulls_not_distinct=True,
            postgresql_where=text("resolved_at IS NULL"),
        ),
    )


class AccountRequest(Base):
    """A district's request for a new official account, decided through approvals."""

    __tablename__ = "account_requests"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    district_id: Mapped[str] = mapped_column(ForeignKey("districts.id"))
    platform: Mapped[str] = mapped_column(ForeignKey("platforms.key"))
    handle: Mapped[str] = mapped_column(Text)
    handle_key: Mapped[str] = mapped_column(Text)
    display_name: Mapped[str | None] = mapped_column(Text)
    purpose: Mapped[str] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(Text)
    country: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default="open")
    decision_comment: Mapped[str | None] = mapped_column(Text)
    account_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(one_of("status", RequestStatus), name="status"),
        # One open request per handle, whatever races the requests run.
        _unique_while("uq_account_requests_open", "status = 'open'", "platform", "handle_key"),
    )


class TakedownCase(Base):
    __tablename__ = "takedown_cases"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"))
    district_id: Mapped[str] = mapped_column(ForeignKey("districts.id"))
    status: Mapped[str] = mapped_column(Text, server_default="open")
    platform_reference: Mapped[str | None] = mapped_column(Text)
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, server_default=text("'[]'::jsonb")
    )
    opened_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint(one_of("status", TakedownStatus), name="status"),
        Index("ix_takedown_cases_account", "account_id"),
        # At most one case under way per account, whatever races the requests run.
        _unique_while(
            "uq_takedown_cases_active", "status IN ('open', 'reported', 'escalated')", "account_id"
        ),
    )


class TakedownNote(Base):
    """The timeline of a takedown case: status changes and notes, append-only."""

    __tablename__ = "takedown_notes"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("takedown_cases.id"))
    author: Mapped[str] = mapped_column(Text)
    status: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_takedown_notes_case", "case_id", "id"),)


class AuditEntry(Base):
    """Who changed what and when, append-only (a trigger refuses UPDATE and DELETE)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    entity_type: Mapped[str] = mapped_column(Text)
    entity_id: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(Text)
    changes: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_audit_log_entity", "entity_type", "entity_id", "id"),)
