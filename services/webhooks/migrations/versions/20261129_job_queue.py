"""The job queue (procrastinate): delivery attempts and their retries, and the pruning of the
delivery log."""

from chassis.migrations import create_job_queue_schema, drop_job_queue_schema

revision = "webhooks_0003"
down_revision = "webhooks_0002"

upgrade = create_job_queue_schema
downgrade = drop_job_queue_schema
