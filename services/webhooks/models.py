"""Tables of the webhooks service (one metadata, for its own Alembic)."""

from __future__ import annotations

from chassis.app import Messaging
from chassis.consumer import inbox_table
from chassis.database import declarative_base
from chassis.outbox import OutboxPublisher, outbox_table

Base = declarative_base()

outbox = outbox_table(Base.metadata)
inbox = inbox_table(Base.metadata)
messaging = Messaging(outbox=outbox, inbox=inbox, publisher=OutboxPublisher("webhooks", outbox))
