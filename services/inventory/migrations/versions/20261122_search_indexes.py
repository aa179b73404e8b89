"""Owner lookups by person; one active takedown case per account."""

import sqlalchemy as sa
from alembic import op

revision = "inventory_0004"
down_revision = "inventory_0003"


def upgrade() -> None:
    op.create_index("ix_account_owners_person", "account_owners", ["person"])
    op.create_index(
        "uq_takedown_cases_active",
        "takedown_cases",
        ["account_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('open', 'reported', 'escalated')"),
    )


def downgrade() -> None:
    op.drop_index("uq_takedown_cases_active", table_name="takedown_cases")
    op.drop_index("ix_account_owners_person", table_name="account_owners")
