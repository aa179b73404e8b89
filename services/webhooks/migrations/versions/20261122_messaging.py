"""The outbox and inbox of the webhooks service."""

from chassis.migrations import create_messaging_tables, drop_messaging_tables

revision = "webhooks_0001"
down_revision = None

upgrade = create_messaging_tables
downgrade = drop_messaging_tables
