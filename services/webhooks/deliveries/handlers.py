"""The consumer that turns every service's events into messages (``service.route``).

The chassis's consumer dispatches by exact event type, so the types are listed here: every
type the services publish today, by name (a service imports no other's event models).
``tests/webhooks/test_catalog.py`` holds this list against the services' catalogs, so a new
event type that is not listed fails the tests rather than going undelivered. A wildcard handler
in ``chassis.consumer`` would make the list unneeded.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from chassis.consumer import Handler
from chassis.events import CloudEvent
from services.webhooks.deliveries.service import route

SOURCES = ("inventory", "calendar", "approvals", "metrics", "webhooks")

DELIVERABLE_TYPES = (
    "chorus.inventory.account.flag_resolved",
    "chorus.inventory.account.flagged",
    "chorus.inventory.account.registered",
    "chorus.inventory.account.request_closed",
    "chorus.inventory.account.requested",
    "chorus.inventory.account.status_changed",
    "chorus.inventory.account.updated",
    "chorus.inventory.district.created",
    "chorus.inventory.district.moved",
    "chorus.inventory.district.renamed",
    "chorus.inventory.takedown.opened",
    "chorus.inventory.takedown.updated",
    "chorus.calendar.post.approved",
    "chorus.calendar.post.cancelled",
    "chorus.calendar.post.changes_requested",
    "chorus.calendar.post.publish_failed",
    "chorus.calendar.post.published",
    "chorus.calendar.post.rejected",
    "chorus.calendar.post.schedule_blocked",
    "chorus.calendar.post.scheduled",
    "chorus.calendar.post.submitted",
    "chorus.calendar.post.unscheduled",
    "chorus.calendar.post.withdrawn",
    "chorus.approvals.approval.changes_requested",
    "chorus.approvals.approval.escalated",
    "chorus.approvals.approval.expired",
    "chorus.approvals.approval.granted",
    "chorus.approvals.approval.rejected",
    "chorus.approvals.approval.reminded",
    "chorus.approvals.approval.requested",
    "chorus.approvals.approval.step_decided",
    "chorus.approvals.approval.superseded",
    "chorus.approvals.approval.withdrawn",
    "chorus.webhooks.webhook.delivery_exhausted",
    "chorus.webhooks.webhook.endpoint_disabled",
)


async def on_event(session: AsyncSession, event: CloudEvent) -> None:
    await route(session, event)


DELIVERY_HANDLERS: dict[str, Handler] = dict.fromkeys(DELIVERABLE_TYPES, on_event)
