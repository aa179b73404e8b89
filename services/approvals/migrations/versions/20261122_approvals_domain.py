"""The approvals domain: versioned policies, requests with their planned steps, decisions and
history (append-only), delegations, the approver roster, outside reviewers' invites, and the
district replica.
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

revision = "approvals_0002"
down_revision = "approvals_0001"


def upgrade() -> None:
    create_district_replica()
    op.create_table(
        "approver_roster",
        sa.Column("district_id", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("person", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        timestamp_default_now("created_at"),
        sa.PrimaryKeyConstraint("district_id", "role", "person", name=op.f("pk_approver_roster")),
    )
    op.create_table(
        "delegations",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("delegator", sa.Text(), nullable=False),
        sa.Column("delegate", sa.Text(), nullable=False),
        sa.Column("grants", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        timestamp_default_now("created_at"),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("delegate <> delegator", name=op.f("ck_delegations_not_self")),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_delegations_period_ordered")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delegations")),
    )
    op.create_index("ix_delegations_delegate", "delegations", ["delegate", "ends_at"], unique=False)
    op.create_index(
        "ix_delegations_delegator", "delegations", ["delegator", "ends_at"], unique=False
    )
    op.create_table(
        "policies",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("district_id", sa.Text(), nullable=True),
        sa.Column("subject_kind", sa.Text(), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=False),
        timestamp_default_now("created_at"),
        sa.CheckConstraint(
            "subject_kind IN ('post', 'account_request')", name=op.f("ck_policies_subject_kind")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policies")),
        sa.UniqueConstraint(
            "district_id",
            "subject_kind",
            name="uq_policies_district_kind",
            postgresql_nulls_not_distinct=True,
        ),
    )
    op.create_table(
        "requests",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("subject_kind", sa.Text(), nullable=False),
        sa.Column("subject_id", sa.UUID(), nullable=False),
        sa.Column("district_id", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("snapshot", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("content_hash", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("policy_versions", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.Text(), server_default="open", nullable=False),
        sa.Column("current_position", sa.Integer(), nullable=True),
        sa.Column("source_event_id", sa.UUID(), nullable=True),
        timestamp_default_now("opened_at"),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.CheckConstraint(
            "status IN ('open', 'granted', 'rejected', 'changes_requested"
            "', 'superseded', 'expired', 'withdrawn')",
            name=op.f("ck_requests_status"),
        ),
        sa.CheckConstraint(
            "subject_kind IN ('post', 'account_request')", name=op.f("ck_requests_subject_kind")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_requests")),
        sa.UniqueConstraint("source_event_id", name=op.f("uq_requests_source_event_id")),
    )
    op.create_index("ix_requests_district", "requests", ["district_id", "opened_at"], unique=False)
    op.create_index(
        "ix_requests_expiry",
        "requests",
        ["expires_at"],
        unique=False,
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_index(
        "ix_requests_subject", "requests", ["subject_kind", "subject_id", "opened_at"], unique=False
    )
    op.create_index(
        "uq_requests_open_subject",
        "requests",
        ["subject_kind", "subject_id"],
        unique=True,
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_table(
        "policy_versions",
        sa.Column("policy_id", sa.UUID(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("steps", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=False),
        timestamp_default_now("created_at"),
        sa.ForeignKeyConstraint(
            ["policy_id"], ["policies.id"], name=op.f("fk_policy_versions_policy_id_policies")
        ),
        sa.PrimaryKeyConstraint("policy_id", "version", name=op.f("pk_policy_versions")),
    )
    op.create_table(
        "request_history",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("request_id", sa.UUID(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        jsonb_default("details", "{}"),
        timestamp_default_now("at"),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["requests.id"],
            name=op.f("fk_request_history_request_id_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_history")),
    )
    op.create_index(
        "ix_request_history_request", "request_history", ["request_id", "id"], unique=False
    )
    op.create_table(
        "request_steps",
        sa.Column("request_id", sa.UUID(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("district_id", sa.Text(), nullable=False),
        sa.Column("quorum_mode", sa.Text(), nullable=False),
        sa.Column("quorum_count", sa.Integer(), nullable=False),
        sa.Column("deadline_hours", sa.Integer(), nullable=True),
        sa.Column("remind_before_hours", sa.Integer(), nullable=True),
        sa.Column("escalate_to_role", sa.Text(), nullable=True),
        sa.Column("escalate_to_district_id", sa.Text(), nullable=True),
        sa.Column("request_author", sa.Text(), nullable=False),
        sa.Column("request_opened_at", sa.DateTime(timezone=True), nullable=False),
        jsonb_default("reasons", "[]"),
        sa.Column("status", sa.Text(), server_default="waiting", nullable=False),
        sa.Column("approvals", sa.Integer(), server_default="0", nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('waiting', 'active', 'approved', "
            "'rejected', 'changes_requested', 'closed')",
            name=op.f("ck_request_steps_status"),
        ),
        sa.CheckConstraint("quorum_count >= 1", name=op.f("ck_request_steps_quorum_count")),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["requests.id"],
            name=op.f("fk_request_steps_request_id_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("request_id", "position", name=op.f("pk_request_steps")),
    )
    op.create_index(
        "ix_request_steps_active",
        "request_steps",
        ["role", "district_id", "request_id"],
        unique=False,
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_index(
        "ix_request_steps_due",
        "request_steps",
        ["due_at"],
        unique=False,
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_index(
        "ix_request_steps_escalated",
        "request_steps",
        ["escalate_to_role", "escalate_to_district_id", "request_id"],
        unique=False,
        postgresql_where=sa.text("status = 'active' AND escalated_at IS NOT NULL"),
    )
    op.create_table(
        "decisions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("request_id", sa.UUID(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("decider", sa.Text(), nullable=False),
        sa.Column("acting_for", sa.Text(), nullable=True),
        sa.Column("via", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.Text(), nullable=True),
        timestamp_default_now("decided_at"),
        sa.CheckConstraint(
            "outcome IN ('approve', 'reject', 'request_changes')", name=op.f("ck_decisions_outcome")
        ),
        sa.CheckConstraint(
            "via IN ('grant', 'delegation', 'escalation', 'external')",
            name=op.f("ck_decisions_via"),
        ),
        sa.ForeignKeyConstraint(
            ["request_id", "position"],
            ["request_steps.request_id", "request_steps.position"],
            name=op.f("fk_decisions_request_id_request_steps"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
        sa.UniqueConstraint("request_id", "position", "decider", name="uq_decisions_step_decider"),
    )
    op.create_index("ix_decisions_request", "decisions", ["request_id", "id"], unique=False)
    op.create_table(
        "review_invites",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("request_id", sa.UUID(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column("reviewer_name", sa.Text(), nullable=False),
        sa.Column("reviewer_email", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        timestamp_default_now("created_at"),
        sa.ForeignKeyConstraint(
            ["request_id", "position"],
            ["request_steps.request_id", "request_steps.position"],
            name=op.f("fk_review_invites_request_id_request_steps"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_invites")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_review_invites_token_hash")),
    )
    op.create_index(
        "ix_review_invites_request", "review_invites", ["request_id", "position"], unique=False
    )
    # Decisions and the history are append-only, whoever connects.
    op.execute(
        """
        CREATE FUNCTION approvals_append_only() RETURNS trigger AS $$
        BEGIN
          RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
        END;
        $$ LANGUAGE plpgsql
        """
    )
    for table in ("decisions", "request_history"):
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}"
            " FOR EACH ROW EXECUTE FUNCTION approvals_append_only()"
        )


def downgrade() -> None:
    for table in ("decisions", "request_history"):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    op.execute("DROP FUNCTION IF EXISTS approvals_append_only()")
    # A table goes with its indexes and constraints; children go before their parents.
    for table in (
        "review_invites",
        "decisions",
        "request_steps",
        "request_history",
        "policy_versions",
        "requests",
        "policies",
        "delegations",
        "approver_roster",
    ):
        op.drop_table(table)
    drop_district_replica()
