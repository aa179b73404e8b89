"""The inventory domain: districts, platforms, accounts, owners, flags, account requests,
takedown cases and the audit trail.
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from chassis.districts import LTree
from chassis.migrations import jsonb_default, timestamp_default_now

revision = "inventory_0002"
down_revision = "inventory_0001"


_USER = r"(?P<user>[A-Za-z0-9_]{1,30})"
_DOMAIN = r"(?P<domain>(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,63})"
_BLUESKY = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"

# The registry as first shipped; adding a platform later is another data migration or an INSERT.
PLATFORMS: list[dict[str, Any]] = [
    {
        "key": "facebook",
        "name": "Facebook",
        "handle_pattern": r"[A-Za-z0-9.]{5,50}",
        "profile_url_template": "https://www.facebook.com/{handle}",
        "url_patterns": [r"^(?:facebook|fb)\.com/(?P<handle>[A-Za-z0-9.]{5,50})/?$"],
    },
    {
        "key": "instagram",
        "name": "Instagram",
        "handle_pattern": r"[A-Za-z0-9._]{1,30}",
        "profile_url_template": "https://www.instagram.com/{handle}/",
        "url_patterns": [r"^instagram\.com/(?P<handle>[A-Za-z0-9._]{1,30})/?$"],
    },
    {
        "key": "x",
        "name": "X",
        "handle_pattern": r"[A-Za-z0-9_]{1,15}",
        "profile_url_template": "https://x.com/{handle}",
        "url_patterns": [r"^(?:x|twitter)\.com/(?P<handle>[A-Za-z0-9_]{1,15})/?$"],
    },
    {
        "key": "linkedin",
        "name": "LinkedIn",
        "handle_pattern": r"[A-Za-z0-9-]{2,100}",
        "profile_url_template": "https://www.linkedin.com/company/{handle}/",
        "url_patterns": [
            r"^linkedin\.com/(?:company|showcase|school)/(?P<handle>[A-Za-z0-9-]{2,100})/?$"
        ],
    },
    {
        "key": "youtube",
        "name": "YouTube",
        "handle_pattern": r"[A-Za-z0-9._-]{3,30}",
        "profile_url_template": "https://www.youtube.com/@{handle}",
        "url_patterns": [r"^youtube\.com/@(?P<handle>[A-Za-z0-9._-]{3,30})/?$"],
    },
    {
        "key": "tiktok",
        "name": "TikTok",
        "handle_pattern": r"[A-Za-z0-9._]{2,24}",
        "profile_url_template": "https://www.tiktok.com/@{handle}",
        "url_patterns": [r"^tiktok\.com/@(?P<handle>[A-Za-z0-9._]{2,24})/?$"],
    },
    {
        "key": "pinterest",
        "name": "Pinterest",
        "handle_pattern": r"[A-Za-z0-9_]{3,30}",
        "profile_url_template": "https://www.pinterest.com/{handle}/",
        "url_patterns": [r"^pinterest\.(?:com|co\.uk|[a-z]{2})/(?P<handle>[A-Za-z0-9_]{3,30})/?$"],
    },
    {
        "key": "threads",
        "name": "Threads",
        "handle_pattern": r"[A-Za-z0-9._]{1,30}",
        "profile_url_template": "https://www.threads.net/@{handle}",
        "url_patterns": [r"^threads\.(?:net|com)/@(?P<handle>[A-Za-z0-9._]{1,30})/?$"],
    },
    {
        "key": "bluesky",
        "name": "Bluesky",
        "handle_pattern": _BLUESKY,
        "profile_url_template": "https://bsky.app/profile/{handle}",
        "url_patterns": [rf"^bsky\.app/profile/(?P<handle>{_BLUESKY})/?$"],
    },
    {
        "key": "mastodon",
        "name": "Mastodon",
        "handle_pattern": f"{_USER}@{_DOMAIN}",
        "profile_url_template": "https://{domain}/@{user}",
        "url_patterns": [rf"^{_DOMAIN}/@{_USER}/?$"],
        "handle_from_url": "{user}@{domain}",
        # Any domain may be a Mastodon server: try every other platform's patterns first.
        "url_priority": 1000,
    },
]


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS ltree")
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("entity_type", sa.Text(), nullable=False),
        sa.Column("entity_id", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("request_id", sa.Text(), nullable=True),
        jsonb_default("changes", "{}"),
        timestamp_default_now("at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(
        "ix_audit_log_entity", "audit_log", ["entity_type", "entity_id", "id"], unique=False
    )
    op.create_table(
        "districts",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("parent_id", sa.Text(), nullable=True),
        sa.Column("path", LTree(), nullable=False),
        timestamp_default_now("created_at"),
        timestamp_default_now("updated_at"),
        sa.CheckConstraint(
            "kind IN ('region', 'district', 'team')", name=op.f("ck_districts_kind")
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["districts.id"], name=op.f("fk_districts_parent_id_districts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_districts")),
    )
    op.create_index(
        "ix_districts_path", "districts", ["path"], unique=False, postgresql_using="gist"
    )
    op.create_table(
        "platforms",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("handle_pattern", sa.Text(), nullable=False),
        sa.Column("case_sensitive", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("profile_url_template", sa.Text(), nullable=False),
        sa.Column("url_patterns", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("handle_from_url", sa.Text(), server_default="{handle}", nullable=False),
        sa.Column("url_priority", sa.Integer(), server_default="100", nullable=False),
        sa.Column("dormant_after_days", sa.Integer(), server_default="90", nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_platforms")),
    )
    op.create_table(
        "accounts",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("platform", sa.Text(), nullable=False),
        sa.Column("handle", sa.Text(), nullable=False),
        sa.Column("handle_key", sa.Text(), nullable=False),
        sa.Column("profile_url", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=True),
        sa.Column("district_id", sa.Text(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=True),
        sa.Column("language", sa.Text(), nullable=True),
        sa.Column("country", sa.Text(), nullable=True),
        sa.Column("tags", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("duplicate_of", sa.UUID(), nullable=True),
        sa.Column("last_activity_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        timestamp_default_now("created_at"),
        timestamp_default_now("updated_at"),
        sa.CheckConstraint(
            "(status = 'duplicate') = (duplicate_of IS NOT NULL)",
            name=op.f("ck_accounts_duplicate_has_original"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'official', 'unofficial', 'rogue', 'fan', 'duplicate',"
            " 'dormant', 'orphaned', 'archived')",
            name=op.f("ck_accounts_status"),
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["districts.id"], name=op.f("fk_accounts_district_id_districts")
        ),
        sa.ForeignKeyConstraint(
            ["duplicate_of"], ["accounts.id"], name=op.f("fk_accounts_duplicate_of_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["platform"], ["platforms.key"], name=op.f("fk_accounts_platform_platforms")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("platform", "handle_key", name="uq_accounts_platform_handle"),
    )
    op.create_index(
        "ix_accounts_district", "accounts", ["district_id", "platform", "handle_key"], unique=False
    )
    op.create_index(
        "ix_accounts_handle_trgm",
        "accounts",
        ["handle_key"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"handle_key": "gin_trgm_ops"},
    )
    op.create_index(
        "ix_accounts_search_trgm",
        "accounts",
        ["search_text"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"search_text": "gin_trgm_ops"},
    )
    op.create_index("ix_accounts_status", "accounts", ["status"], unique=False)
    op.create_table(
        "account_flags",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        jsonb_default("details", "{}"),
        timestamp_default_now("created_at"),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_account_flags_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_flags")),
    )
    op.create_index(
        "uq_account_flags_open",
        "account_flags",
        ["account_id", "reason", sa.literal_column("(details->>'other_account_id')")],
        unique=True,
        postgresql_where=sa.text("resolved_at IS NULL"),
    )
    op.create_table(
        "account_owners",
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("person", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.CheckConstraint("role IN ('primary', 'backup')", name=op.f("ck_account_owners_role")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_account_owners_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "person", name=op.f("pk_account_owners")),
    )
    op.create_table(
        "account_requests",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("district_id", sa.Text(), nullable=False),
        sa.Column("platform", sa.Text(), nullable=False),
        sa.Column("handle", sa.Text(), nullable=False),
        sa.Column("handle_key", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=True),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("language", sa.Text(), nullable=True),
        sa.Column("country", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="open", nullable=False),
        sa.Column("decision_comment", sa.Text(), nullable=True),
        sa.Column("account_id", sa.UUID(), nullable=True),
        timestamp_default_now("created_at"),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('open', 'approved', 'rejected', 'cancelled')",
            name=op.f("ck_account_requests_status"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_account_requests_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["district_id"],
            ["districts.id"],
            name=op.f("fk_account_requests_district_id_districts"),
        ),
        sa.ForeignKeyConstraint(
            ["platform"], ["platforms.key"], name=op.f("fk_account_requests_platform_platforms")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_requests")),
    )
    op.create_table(
        "takedown_cases",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("account_id", sa.UUID(), nullable=False),
        sa.Column("district_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="open", nullable=False),
        sa.Column("platform_reference", sa.Text(), nullable=True),
        jsonb_default("evidence", "[]"),
        sa.Column("opened_by", sa.Text(), nullable=False),
        timestamp_default_now("created_at"),
        timestamp_default_now("updated_at"),
        sa.CheckConstraint(
            "status IN ('open', 'reported', 'escalated', 'removed', 'kept', 'transferred')",
            name=op.f("ck_takedown_cases_status"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_takedown_cases_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["districts.id"], name=op.f("fk_takedown_cases_district_id_districts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_takedown_cases")),
    )
    op.create_index("ix_takedown_cases_account", "takedown_cases", ["account_id"], unique=False)
    op.create_table(
        "takedown_notes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("case_id", sa.UUID(), nullable=False),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        timestamp_default_now("created_at"),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["takedown_cases.id"],
            name=op.f("fk_takedown_notes_case_id_takedown_cases"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_takedown_notes")),
    )
    op.create_index("ix_takedown_notes_case", "takedown_notes", ["case_id", "id"], unique=False)
    platforms = sa.table(
        "platforms",
        sa.column("key", sa.Text),
        sa.column("name", sa.Text),
        sa.column("handle_pattern", sa.Text),
        sa.column("profile_url_template", sa.Text),
        sa.column("url_patterns", postgresql.ARRAY(sa.Text)),
        sa.column("handle_from_url", sa.Text),
        sa.column("url_priority", sa.Integer),
    )
    op.bulk_insert(
        platforms,
        [{"handle_from_url": "{handle}", "url_priority": 100, **row} for row in PLATFORMS],
    )
    # The audit trail is append-only, whoever connects.
    op.execute(
        """
        CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$
        BEGIN
          RAISE EXCEPTION 'the audit log is append-only';
        END;
        $$ LANGUAGE plpgsql
        """
    )
    op.execute(
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log"
        " FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
    op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    # A table goes with its indexes and constraints; children go before their parents.
    for table in (
        "takedown_notes",
        "takedown_cases",
        "account_requests",
        "account_owners",
        "account_flags",
        "accounts",
        "platforms",
        "districts",
        "audit_log",
    ):
        op.drop_table(table)
