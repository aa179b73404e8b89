"""The outbox and inbox of the approvals service."""

from chassis.migrations import create_messaging_tables, drop_messaging_tables

revision = "approvals_0001"
down_revision = None

upgrade = create_messaging_tables
downgrade = drop_messaging_tables
