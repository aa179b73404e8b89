"""A step may ask for its exact role: only holders of that very role decide it, not holders
of a role that includes it (``chassis.principal.ROLE_INCLUDES``). Steps planned before this
revision keep the inclusive reading (``false``), which is how every service reads roles now.
"""

import sqlalchemy as sa
from alembic import op

revision = "approvals_0005"
down_revision = "approvals_0004"


def upgrade() -> None:
    op.add_column(
        "request_steps",
        sa.Column("exact_role", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("request_steps", "exact_role")
