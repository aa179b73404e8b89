"""Events the inventory service publishes, and the consumers of those it reads.

Published on `chorus.inventory.events` (type `chorus.inventory.<aggregate>.<verb>`):
district.created, district.renamed, district.moved, account.registered, account.updated,
account.status_changed, account.flagged, account.flag_resolved, account.requested,
account.request_closed, takedown.opened, takedown.updated.

Consumed: the approvals service's decisions on account requests, and the calendar service's
post.published (the last activity of each account).
"""

from __future__ import annotations

from chassis.app import ConsumerSpec
from services.inventory.detection.handlers import HANDLERS as CALENDAR_HANDLERS
from services.inventory.requests.handlers import HANDLERS as APPROVAL_HANDLERS

consumers: list[ConsumerSpec] = [
    ConsumerSpec(name="approvals", sources=["approvals"], handlers=APPROVAL_HANDLERS),
    ConsumerSpec(name="calendar", sources=["calendar"], handlers=CALENDAR_HANDLERS),
]
