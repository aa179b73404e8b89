"""One open flag per account and reason even without another account (NULLS NOT DISTINCT);
one open request per handle.

Revision ID: inventory_0005
Revises: inventory_0004
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "inventory_0005"
down_revision: str | None = "inventory_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("uq_account_flags_open", table_name="account_flags")
    op.create_index(
        "uq_account_flags_open",
        "account_flags",
        ["account_id", "reason", sa.text("(details->>'other_account_id')")],
        unique=True,
        postgresql_nulls_not_distinct=True,
        postgresql_where=sa.text("resolved_at IS NULL"),
    )
    op.create_index(
        "uq_account_requests_open",
        "account_requests",
        ["platform", "handle_key"],
        unique=True,
        postgresql_where=sa.text("status = 'open'"),
    )


def downgrade() -> None:
    op.drop_index("uq_account_requests_open", table_name="account_requests")
    op.drop_index("uq_account_flags_open", table_name="account_flags")
    op.create_index(
        "uq_account_flags_open",
        "account_flags",
        ["account_id", "reason", sa.text("(details->>'other_account_id')")],
        unique=True,
        postgresql_where=sa.text("resolved_at IS NULL"),
    )
