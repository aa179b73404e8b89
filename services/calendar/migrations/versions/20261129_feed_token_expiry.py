"""Feed tokens expire and can be renewed: ``expires_at`` (tokens made before get the default
90 days from the day of this migration, so no subscription breaks at deploy time), the
token's first characters, who renewed it and when, and an index to list tokens newest first.
"""

import sqlalchemy as sa
from alembic import op

revision = "calendar_0003"
down_revision = "calendar_0002"


def upgrade() -> None:
    op.add_column("feed_tokens", sa.Column("expires_at", sa.DateTime(timezone=True)))
    op.execute("UPDATE feed_tokens SET expires_at = now() + interval '90 days'")
    op.alter_column("feed_tokens", "expires_at", nullable=False)
    op.add_column("feed_tokens", sa.Column("token_prefix", sa.Text(), nullable=True))
    op.add_column("feed_tokens", sa.Column("renewed_by", sa.Text(), nullable=True))
    op.add_column("feed_tokens", sa.Column("renewed_at", sa.DateTime(timezone=True)))
    op.create_index("ix_feed_tokens_created", "feed_tokens", ["created_at", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_feed_tokens_created", table_name="feed_tokens")
    op.drop_column("feed_tokens", "renewed_at")
    op.drop_column("feed_tokens", "renewed_by")
    op.drop_column("feed_tokens", "token_prefix")
    op.drop_column("feed_tokens", "expires_at")
