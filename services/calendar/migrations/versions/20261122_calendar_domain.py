"""The calendar domain: calendars (the company-wide one seeded), campaigns, posts with their
targets, assets and history, the asset library, the style guide, blackouts, feed tokens, and
the read models of the inventory (the district replica and the accounts).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from chassis.migrations import (
    create_district_replica,
    drop_district_replica,
    jsonb_default,
    timestamp_default_now,
)

revision = "calendar_0002"
down_revision = "calendar_0001"


def upgrade() -> None:
    create_district_replica()
    op.create_table(
        "accounts",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("platform", sa.Text(), nullable=False),
        sa.Column("handle", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=True),
        sa.Column("profile_url", sa.Text(), nullable=True),
        sa.Column("district_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        timestamp_default_now("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
    )
    op.create_index("ix_accounts_district", "accounts", ["district_id"], unique=False)
    op.create_table(
        "assets",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("district_id", sa.Text(), nullable=True),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("storage_key", sa.Text(), nullable=False),
        sa.Column("content_type", sa.Text(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("filename", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("tags", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("alt_text", sa.Text(), nullable=True),
        sa.Column("usage_rights", sa.Text(), nullable=True),
        sa.Column("rights_expire_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=False),
        timestamp_default_now("created_at"),
        timestamp_default_now("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assets")),
        sa.UniqueConstraint(
            "district_id",
            "sha256",
            name="uq_assets_district_sha256",
            postgresql_nulls_not_distinct=True,
        ),
    )
    op.create_index("ix_assets_rights_expire_at", "assets", ["rights_expire_at"], unique=False)
    op.create_index("ix_assets_tags", "assets", ["tags"], unique=False, postgresql_using="gin")
    op.create_table(
        "blackouts",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("district_id", sa.Text(), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        timestamp_default_now("created_at"),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_blackouts_period_ordered")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blackouts")),
    )
    op.create_index("ix_blackouts_period", "blackouts", ["starts_at", "ends_at"], unique=False)
    op.create_table(
        "calendars",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("district_id", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        timestamp_default_now("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendars")),
        sa.UniqueConstraint(
            "district_id", name="uq_calendars_district", postgresql_nulls_not_distinct=True
        ),
    )
    op.create_table(
        "campaigns",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("district_id", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        jsonb_default("goals", "[]"),
        sa.Column("tags", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        timestamp_default_now("created_at"),
        timestamp_default_now("updated_at"),
        sa.CheckConstraint("ends_on >= starts_on", name=op.f("ck_campaigns_dates_ordered")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )
    op.create_index(
        "ix_campaigns_district", "campaigns", ["district_id", "starts_on"], unique=False
    )
    op.create_table(
        "style_rules",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("district_id", sa.Text(), nullable=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("severity", sa.Text(), server_default="error", nullable=False),
        sa.Column("platform", sa.Text(), nullable=True),
        jsonb_default("params", "{}"),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        timestamp_default_now("created_at"),
        timestamp_default_now("updated_at"),
        sa.CheckConstraint(
            "kind IN ('banned_term', 'required_disclosure', 'hashtag_limit', 'length_limit"
            "', 'link_domains', 'alt_text_required', 'min_spacing')",
            name=op.f("ck_style_rules_kind"),
        ),
        sa.CheckConstraint(
            "severity IN ('error', 'warning')", name=op.f("ck_style_rules_severity")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_style_rules")),
    )
    op.create_index("ix_style_rules_district", "style_rules", ["district_id"], unique=False)
    op.create_table(
        "feed_tokens",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("calendar_id", sa.UUID(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("include_subtree", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        timestamp_default_now("created_at"),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["calendar_id"], ["calendars.id"], name=op.f("fk_feed_tokens_calendar_id_calendars")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_feed_tokens_token_hash")),
    )
    op.create_index("ix_feed_tokens_calendar", "feed_tokens", ["calendar_id"], unique=False)
    op.create_table(
        "posts",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("calendar_id", sa.UUID(), nullable=False),
        sa.Column("district_id", sa.Text(), nullable=True),
        sa.Column("kind", sa.Text(), server_default="post", nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), server_default="", nullable=False),
        sa.Column("link", sa.Text(), nullable=True),
        jsonb_default("media", "[]"),
        jsonb_default("variants", "[]"),
        sa.Column("publish_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("timezone", sa.Text(), server_default="UTC", nullable=False),
        sa.Column("campaign_id", sa.UUID(), nullable=True),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("assignee", sa.Text(), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.Text(), server_default="draft", nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("content_hash", sa.Text(), nullable=False),
        sa.Column("submitted_hash", sa.Text(), nullable=True),
        sa.Column("approved_hash", sa.Text(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        timestamp_default_now("created_at"),
        timestamp_default_now("updated_at"),
        sa.CheckConstraint(
            "status IN ('draft', 'in_review', 'changes_requested', 'approved', 'scheduled"
            "', 'published', 'publish_failed', 'rejected', 'cancelled')",
            name=op.f("ck_posts_status"),
        ),
        sa.ForeignKeyConstraint(
            ["calendar_id"], ["calendars.id"], name=op.f("fk_posts_calendar_id_calendars")
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_posts_campaign_id_campaigns")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_posts")),
    )
    op.create_index("ix_posts_assignee", "posts", ["assignee", "publish_at"], unique=False)
    op.create_index(
        "ix_posts_calendar_publish_at", "posts", ["calendar_id", "publish_at", "id"], unique=False
    )
    op.create_index("ix_posts_campaign", "posts", ["campaign_id", "publish_at"], unique=False)
    op.create_index(
        "ix_posts_district_publish_at", "posts", ["district_id", "publish_at", "id"], unique=False
    )
    op.create_index("ix_posts_publish_at", "posts", ["publish_at", "id"], unique=False)
    op.create_table(
        "post_assets",
        sa.Column("post_id", sa.UUID(), nullable=False),
        sa.Column("asset_id", sa.UUID(), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["assets.id"], name=op.f("fk_post_assets_asset_id_assets")
        ),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name=op.f("fk_post_assets_post_id_posts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("post_id", "asset_id", name=op.f("pk_post_assets")),
    )
    op.create_index("ix_post_assets_asset", "post_assets", ["asset_id"], unique=False)
    op.create_table(
        "post_history",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("post_id", sa.UUID(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("from_status", sa.Text(), nullable=True),
        sa.Column("to_status", sa.Text(), nullable=True),
        jsonb_default("details", "{}"),
        timestamp_default_now("at"),
        sa.ForeignKeyConstraint(
            ["post_id"],
            ["posts.id"],
            name=op.f("fk_post_history_post_id_posts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_post_history")),
    )
    op.create_index("ix_post_history_post", "post_history", ["post_id", "id"], unique=False)
    op.create_table(
        "post_targets",
        sa.Column("post_id", sa.UUID(), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("platform", sa.Text(), nullable=False),
        sa.Column("publish_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("publication_status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("external_id", sa.Text(), nullable=True),
        sa.Column("permalink", sa.Text(), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "publication_status IN ('pending', 'published', 'failed')",
            name=op.f("ck_post_targets_publication_status"),
        ),
        sa.ForeignKeyConstraint(
            ["post_id"],
            ["posts.id"],
            name=op.f("fk_post_targets_post_id_posts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("post_id", "account_id", name=op.f("pk_post_targets")),
    )
    op.create_index(
        "ix_post_targets_account", "post_targets", ["account_id", "publish_at"], unique=False
    )
    op.execute(
        "INSERT INTO calendars (id, district_id, name)"
        " VALUES (gen_random_uuid(), NULL, 'Company-wide')"
    )


def downgrade() -> None:
    # A table goes with its indexes and constraints; children go before their parents.
    for table in (
        "post_targets",
        "post_history",
        "post_assets",
        "posts",
        "feed_tokens",
        "style_rules",
        "campaigns",
        "calendars",
        "blackouts",
        "assets",
        "accounts",
    ):
        op.drop_table(table)
    drop_district_replica()
