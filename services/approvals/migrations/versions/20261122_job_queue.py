"""The job queue (procrastinate) for deadlines, reminders, escalations and expiry."""

from chassis.migrations import create_job_queue_schema, drop_job_queue_schema

revision = "approvals_0003"
down_revision = "approvals_0002"

upgrade = create_job_queue_schema
downgrade = drop_job_queue_schema
