"""The job queue (procrastinate) for the scheduled detection scans."""

from chassis.migrations import create_job_queue_schema, drop_job_queue_schema

revision = "inventory_0003"
down_revision = "inventory_0002"

upgrade = create_job_queue_schema
downgrade = drop_job_queue_schema
