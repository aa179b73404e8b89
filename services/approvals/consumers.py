"""The consumers of the approvals service: which services' events it reads, and a handler each.

Consumed: calendar's post.submitted / withdrawn / cancelled; inventory's account.requested /
request_closed, and its district events (the district replica).
"""

from __future__ import annotations

from chassis.app import ConsumerSpec
from chassis.districts import DistrictReplica
from services.approvals.models import districts
from services.approvals.requests.handlers import CALENDAR_HANDLERS, INVENTORY_HANDLERS

consumers: list[ConsumerSpec] = [
    ConsumerSpec(
        name="inventory",
        sources=["inventory"],
        handlers={**DistrictReplica(districts).handlers, **INVENTORY_HANDLERS},
    ),
    ConsumerSpec(name="calendar", sources=["calendar"], handlers=CALENDAR_HANDLERS),
]
