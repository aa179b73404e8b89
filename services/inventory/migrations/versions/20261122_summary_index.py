"""A covering index for the presence summary: counts per district, platform and status come
from the index alone.
"""

from alembic import op

revision = "inventory_0006"
down_revision = "inventory_0005"


def upgrade() -> None:
    op.create_index(
        "ix_accounts_presence", "accounts", ["district_id", "platform", "status"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_accounts_presence", table_name="accounts")
