"""The job queue (procrastinate) for deadlines, reminders, escalations and expiry.

Revision ID: approvals_0003
Revises: approvals_0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from chassis.migrations import create_job_queue_schema, drop_job_queue_schema

revision: str = "approvals_0003"
down_revision: str | None = "approvals_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_job_queue_schema()


def downgrade() -> None:
    drop_job_queue_schema()
