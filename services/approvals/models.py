"""Tables of the approvals service (one metadata, for its own Alembic)."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from chassis.app import Messaging
from chassis.consumer import inbox_table
from chassis.database import new_metadata
from chassis.outbox import OutboxPublisher, outbox_table


class Base(DeclarativeBase):
    metadata = new_metadata()


outbox = outbox_table(Base.metadata)
inbox = inbox_table(Base.metadata)
messaging = Messaging(outbox=outbox, inbox=inbox, publisher=OutboxPublisher("approvals", outbox))
