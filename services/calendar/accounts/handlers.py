"""Handlers of the inventory's events: the district replica (and each new district's
calendar, made as the district arrives) and the accounts read model."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from chassis.consumer import Handler
from chassis.districts import DISTRICT_CREATED, DistrictEvent, DistrictReplica
from chassis.events import CloudEvent
from services.calendar.accounts.service import AccountEvent, apply_account
from services.calendar.calendars.service import calendar_for
from services.calendar.models import districts

REGISTERED = "chorus.inventory.account.registered"
UPDATED = "chorus.inventory.account.updated"
STATUS_CHANGED = "chorus.inventory.account.status_changed"


async def on_account_snapshot(session: AsyncSession, event: CloudEvent) -> None:
    await apply_account(session, AccountEvent.model_validate(event.data), full=True)


async def on_status_changed(session: AsyncSession, event: CloudEvent) -> None:
    await apply_account(session, AccountEvent.model_validate(event.data), full=False)


REPLICA_HANDLERS = DistrictReplica(districts).handlers


async def on_district_created(session: AsyncSession, event: CloudEvent) -> None:
    """The replica learns the district, and the district gets its one calendar."""
    await REPLICA_HANDLERS[DISTRICT_CREATED](session, event)
    await calendar_for(session, DistrictEvent.model_validate(event.data).id)


HANDLERS: dict[str, Handler] = {
    **REPLICA_HANDLERS,
    DISTRICT_CREATED: on_district_created,
    REGISTERED: on_account_snapshot,
    UPDATED: on_account_snapshot,
    STATUS_CHANGED: on_status_changed,
}
