"""Tables of the calendar service (one metadata, for its own Alembic).

A calendar is either the company-wide one (``district_id`` NULL, exactly one) or a district's
(one per district, made on first use). A post belongs to one calendar and carries that
calendar's district, so views filter posts by district without a join.

``districts`` and ``accounts`` are read models: the district tree and the accounts of the
inventory, kept from inventory's events. Nothing here writes them but their event handlers.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy import (
    text as sql_text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from chassis.app import Messaging
from chassis.database import new_metadata, one_of
from chassis.districts import district_replica_table
from services.calendar.events import catalog
from services.calendar.vocabulary import (
    ApprovalStatus,
    PostStatus,
    PublicationStatus,
    RuleKind,
    Severity,
)


class Base(DeclarativeBase):
    metadata = new_metadata()


districts = district_replica_table(Base.metadata)
messaging = Messaging.of(Base.metadata, catalog)


class Account(Base):
    """An inventory account as calendar needs it to target posts (read model)."""

    __tablename__ = "accounts"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    platform: Mapped[str] = mapped_column(Text)
    handle: Mapped[str] = mapped_column(Text)
    display_name: Mapped[str | None] = mapped_column(Text)
    profile_url: Mapped[str | None] = mapped_column(Text)
    district_id: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    # The inventory's version of the account: an older event never overwrites a newer one.
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_accounts_district", "district_id"),)


class Calendar(Base):
    __tablename__ = "calendars"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    # NULL: the company-wide calendar.
    district_id: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        # One calendar per district, and one company-wide calendar (NULLs compare equal).
        UniqueConstraint(
            "district_id", name="uq_calendars_district", postgresql_nulls_not_distinct=True
        ),
    )


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    # NULL: a company-wide campaign, open to every district's posts.
    district_id: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    # [{"kpi": "engagement_rate", "target": 0.04, "note": ...}]
    goals: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, server_default=sql_text("'[]'::jsonb")
    )
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint("ends_on >= starts_on", name="dates_ordered"),
        Index("ix_campaigns_district", "district_id", "starts_on"),
    )


class Post(Base):
    __tablename__ = "posts"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    calendar_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("calendars.id"))
    # The calendar's district (NULL on the company-wide calendar).
    district_id: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text, server_default="post")
    title: Mapped[str] = mapped_column(Text)
    # The master content; variants override it per platform.
    text: Mapped[str] = mapped_column(Text, server_default="")
    link: Mapped[str | None] = mapped_column(Text)
    # [{"asset_id": uuid, "alt_text": str | None}]
    media: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, server_default=sql_text("'[]'::jsonb")
    )
    # [{"platform": str, "text": str | None, "link": str | None, "media": [...] | None}]
    variants: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, server_default=sql_text("'[]'::jsonb")
    )
    publish_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # IANA zone the author planned in; publish_at is the UTC instant.
    timezone: Mapped[str] = mapped_column(Text, server_default="UTC")
    campaign_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("campaigns.id"))
    author: Mapped[str] = mapped_column(Text)
    assignee: Mapped[str | None] = mapped_column(Text)
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(Text, server_default=PostStatus.DRAFT.value)
    # Why the post waits where it is (a blackout or an archived account blocking scheduling).
    status_reason: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    # sha256 of the content as approvals sees it; submitted_hash and approved_hash are the
    # content_hash at submission and at approval, so an edit after either is detectable.
    content_hash: Mapped[str] = mapped_column(Text)
    submitted_hash: Mapped[str | None] = mapped_column(Text)
    approved_hash: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint(one_of("status", PostStatus), name="status"),
        Index("ix_posts_publish_at", "publish_at", "id"),
        Index("ix_posts_district_publish_at", "district_id", "publish_at", "id"),
        Index("ix_posts_calendar_publish_at", "calendar_id", "publish_at", "id"),
        Index("ix_posts_campaign", "campaign_id", "publish_at"),
        Index("ix_posts_assignee", "assignee", "publish_at"),
    )


class PostTarget(Base):
    """An account a post publishes on, and how that publication went."""

    __tablename__ = "post_targets"

    post_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    platform: Mapped[str] = mapped_column(Text)
    # The post's publish_at, kept here so spacing per account is one index range scan.
    publish_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    publication_status: Mapped[str] = mapped_column(
        Text, server_default=PublicationStatus.PENDING.value
    )
    external_id: Mapped[str | None] = mapped_column(Text)
    permalink: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint(one_of("publication_status", PublicationStatus), name="publication_status"),
        Index("ix_post_targets_account", "account_id", "publish_at"),
    )


class PostAsset(Base):
    """An asset a post uses (in its master media or a variant's)."""

    __tablename__ = "post_assets"

    post_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True
    )
    asset_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("assets.id"), primary_key=True)

    __table_args__ = (Index("ix_post_assets_asset", "asset_id"),)


class PostApproval(Base):
    """The approval request of a post's latest submission, as approvals' events tell it (a
    read model: approvals' handlers write it; a new submission deletes it until its own
    request arrives). One row per post; ``opened_at`` (the time of its
    ``approval.requested``) orders requests, so a late event of an older one changes nothing."""

    __tablename__ = "post_approvals"

    post_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True
    )
    request_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    status: Mapped[str] = mapped_column(Text)
    # The plan: [{"position", "key", "name", "role", "district_id"}], in order.
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    # The step being decided; NULL once the request is closed.
    position: Mapped[int | None] = mapped_column(Integer)
    # {"role", "district_id"}: who may also decide the active step since it was escalated.
    escalated_to: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (CheckConstraint(one_of("status", ApprovalStatus), name="status"),)


class PostHistory(Base):
    """The post's timeline: every status change and edit, append-only."""

    __tablename__ = "post_history"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    post_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(Text)
    from_status: Mapped[str | None] = mapped_column(Text)
    to_status: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=sql_text("'{}'::jsonb"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_post_history_post", "post_id", "id"),)


class Asset(Base):
    """A file of the shared library. The bytes live in storage under ``storage_key`` (content
    addressed by sha256); a district uploading the same bytes twice gets the same asset."""

    __tablename__ = "assets"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    # NULL: a company-wide asset, usable by every district.
    district_id: Mapped[str | None] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(Text)
    storage_key: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    filename: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    alt_text: Mapped[str | None] = mapped_column(Text)
    usage_rights: Mapped[str | None] = mapped_column(Text)
    rights_expire_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        UniqueConstraint(
            "district_id",
            "sha256",
            name="uq_assets_district_sha256",
            postgresql_nulls_not_distinct=True,
        ),
        Index("ix_assets_tags", "tags", postgresql_using="gin"),
        Index("ix_assets_rights_expire_at", "rights_expire_at"),
    )


class StyleRule(Base):
    """One rule of the style guide: company-wide (``district_id`` NULL) or a district's
    addition, which applies to that district and those below it."""

    __tablename__ = "style_rules"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    district_id: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(Text, server_default="error")
    # NULL: every platform.
    platform: Mapped[str | None] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=sql_text("'{}'::jsonb"))
    description: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=sql_text("true"))
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint(one_of("kind", RuleKind), name="kind"),
        CheckConstraint(one_of("severity", Severity), name="severity"),
        Index("ix_style_rules_district", "district_id"),
    )


class Blackout(Base):
    """A period when nothing publishes: company-wide (``district_id`` NULL) or for a district
    and those below it."""

    __tablename__ = "blackouts"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    district_id: Mapped[str | None] = mapped_column(Text)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="period_ordered"),
        Index("ix_blackouts_period", "starts_at", "ends_at"),
    )


class FeedToken(Base):
    """A revocable, expiring token behind a calendar's iCalendar feed URL. Only its sha256
    and its first characters (so people can tell their URLs apart) are kept."""

    __tablename__ = "feed_tokens"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    calendar_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("calendars.id"))
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    label: Mapped[str | None] = mapped_column(Text)
    # The feed shows the calendar's district and the districts below it.
    include_subtree: Mapped[bool] = mapped_column(Boolean, server_default=sql_text("false"))
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The feed answers like a revoked one from this instant; renewing moves it.
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # NULL for tokens made before prefixes were kept.
    token_prefix: Mapped[str | None] = mapped_column(Text)
    renewed_by: Mapped[str | None] = mapped_column(Text)
    renewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_feed_tokens_calendar", "calendar_id"),
        Index("ix_feed_tokens_created", "created_at", "id"),
    )
