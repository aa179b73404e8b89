"""The consumers of the calendar service: which services' events it reads, and a handler each.

Consumed: inventory's district events (the district replica) and account events (the accounts
a post may target); approvals' decisions on posts; the webhooks service's scheduler callbacks.
"""

from __future__ import annotations

from chassis.app import ConsumerSpec
from services.calendar.accounts.handlers import HANDLERS as INVENTORY_HANDLERS
from services.calendar.posts.handlers import APPROVAL_HANDLERS, SCHEDULER_HANDLERS

consumers: list[ConsumerSpec] = [
    ConsumerSpec(name="inventory", sources=["inventory"], handlers=INVENTORY_HANDLERS),
    ConsumerSpec(name="approvals", sources=["approvals"], handlers=APPROVAL_HANDLERS),
    ConsumerSpec(name="webhooks", sources=["webhooks"], handlers=SCHEDULER_HANDLERS),
]
