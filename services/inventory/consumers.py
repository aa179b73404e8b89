"""The consumers of the inventory service: which services' events it reads, and a handler each.

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
