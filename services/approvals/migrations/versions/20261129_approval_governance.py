"""Outside review is a property of the policy step: a planned step keeps whether it accepts
outside reviewers and whether their answers count (``outside_review``); an invite keeps the
answer given through it, so advisory answers (which are not decisions) are shown on the
request. A delegation records who revoked it (the delegator, or now a manager of their
district or the central team).
"""

import sqlalchemy as sa
from alembic import op

revision = "approvals_0004"
down_revision = "approvals_0003"


def upgrade() -> None:
    # Steps planned before this revision took any invite as a full decision; they now take
    # none ("none"), the safe reading of a plan that never said.
    op.add_column(
        "request_steps",
        sa.Column("outside_review", sa.Text(), server_default="none", nullable=False),
    )
    op.create_check_constraint(
        op.f("ck_request_steps_outside_review"),
        "request_steps",
        "outside_review IN ('none', 'advisory', 'counted')",
    )
    op.add_column("review_invites", sa.Column("outcome", sa.Text(), nullable=True))
    op.add_column("review_invites", sa.Column("comment", sa.Text(), nullable=True))
    op.create_check_constraint(
        op.f("ck_review_invites_outcome"),
        "review_invites",
        "outcome IS NULL OR outcome IN ('approve', 'reject', 'request_changes')",
    )
    op.add_column("delegations", sa.Column("revoked_by", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("delegations", "revoked_by")
    op.drop_constraint(op.f("ck_review_invites_outcome"), "review_invites", type_="check")
    op.drop_column("review_invites", "comment")
    op.drop_column("review_invites", "outcome")
    op.drop_constraint(op.f("ck_request_steps_outside_review"), "request_steps", type_="check")
    op.drop_column("request_steps", "outside_review")
