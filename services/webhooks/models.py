"""Tables of the webhooks service (one metadata, for its own Alembic)."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from chassis.app import Messaging
from chassis.database import new_metadata
from services.webhooks.events import catalog


class Base(DeclarativeBase):
    metadata = new_metadata()


messaging = Messaging.of(Base.metadata, catalog)
