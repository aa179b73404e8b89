"""Handlers of the inventory's events: the district replica and the accounts read model."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from chassis.consumer import Handler
from chassis.districts import DistrictReplica
from chassis.events import CloudEvent
from services.calendar.accounts.service import AccountEvent, apply_account
from services.calendar.models import districts

REGISTERED = "chorus.inventory.account.registered"
UPDATED = "chorus.inventory.account.updated"
STATUS_CHANGED = "chorus.inventory.account.status_changed"


async def on_account_snapshot(session: AsyncSession, event: CloudEvent) -> None:
    await apply_account(session, AccountEvent.model_validate(event.data), full=True)


async def on_status_changed(session: AsyncSession, event: CloudEvent) -> None:
    await apply_account(session, AccountEvent.model_validate(event.data), full=False)


HANDLERS: dict[str, Handler] = {
    **DistrictReplica(districts).handlers,
    REGISTERED: on_account_snapshot,
    UPDATED: on_account_snapshot,
    STATUS_CHANGED: on_status_changed,
}
