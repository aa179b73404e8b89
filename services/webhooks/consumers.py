"""The consumers of the webhooks service: which services' events it reads, and a handler each.

Consumed: inventory's district events (the district replica, which endpoints' district
filters are read against), and every service's events, its own included, to deliver them
(``deliveries.handlers``).
"""

from __future__ import annotations

from chassis.app import ConsumerSpec
from chassis.districts import DistrictReplica
from services.webhooks.deliveries.handlers import DELIVERY_HANDLERS, SOURCES
from services.webhooks.models import districts

consumers: list[ConsumerSpec] = [
    ConsumerSpec(
        name="districts", sources=["inventory"], handlers=DistrictReplica(districts).handlers
    ),
    ConsumerSpec(name="deliveries", sources=list(SOURCES), handlers=DELIVERY_HANDLERS),
]
