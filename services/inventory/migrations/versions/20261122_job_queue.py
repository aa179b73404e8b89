"""The job queue (procrastinate) for the scheduled detection scans.

Revision ID: inventory_0003
Revises: inventory_0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from chassis.migrations import create_job_queue_schema, drop_job_queue_schema

revision: str = "inventory_0003"
down_revision: str | None = "inventory_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_job_queue_schema()


def downgrade() -> None:
    drop_job_queue_schema()
