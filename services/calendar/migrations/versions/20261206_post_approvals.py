"""A post shows its approval request: ``post_approvals`` keeps, per post, the request of its
latest submission as approvals' events told it (the plan, the step being decided, whom an
escalation added). Empty at first: posts already in review show theirs from the next event
of their request on (``approval.step_decided`` and later find no row and change nothing, so
such a post shows none until it is submitted again).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from chassis.migrations import timestamp_default_now

revision = "calendar_0004"
down_revision = "calendar_0003"


def upgrade() -> None:
    op.create_table(
        "post_approvals",
        sa.Column("post_id", sa.UUID(), nullable=False),
        sa.Column("request_id", sa.UUID(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("steps", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.Column("escalated_to", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        timestamp_default_now("updated_at"),
        sa.CheckConstraint(
            "status IN ('open', 'granted', 'rejected', 'changes_requested', 'expired', "
            "'superseded', 'withdrawn')",
            name=op.f("ck_post_approvals_status"),
        ),
        sa.ForeignKeyConstraint(
            ["post_id"],
            ["posts.id"],
            name=op.f("fk_post_approvals_post_id_posts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("post_id", name=op.f("pk_post_approvals")),
    )


def downgrade() -> None:
    op.drop_table("post_approvals")
