"""One open flag per account and reason even without another account (NULLS NOT DISTINCT);
one open request per handle.
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "inventory_0005"
down_revision = "inventory_0004"


def create_open_flags_index(**options: Any) -> None:
    op.create_index(
        "uq_account_flags_open",
        "account_flags",
        ["account_id", "reason", sa.text("(details->>'other_account_id')")],
        unique=True,
        postgresql_where=sa.text("resolved_at IS NULL"),
        **options,
    )


def upgrade() -> None:
    op.drop_index("uq_account_flags_open", table_name="account_flags")
    create_open_flags_index(postgresql_nulls_not_distinct=True)
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
    create_open_flags_index()
