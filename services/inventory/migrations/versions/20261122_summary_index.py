"""A covering index for the presence summary: counts per district, platform and status come
from the index alone.

Revision ID: inventory_0006
Revises: inventory_0005
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "inventory_0006"
down_revision: str | None = "inventory_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_accounts_presence", "accounts", ["district_id", "platform", "status"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_accounts_presence", table_name="accounts")
