"""The consumers of the webhooks service: which services' events it reads, and a handler each.

Consumed: inventory's district events (the district replica, which endpoints' district
filters are read against).
"""

from __future__ import annotations

from chassis.app import ConsumerSpec
from chassis.districts import DistrictReplica
from services.webhooks.models import districts

consumers: list[ConsumerSpec] = [
    ConsumerSpec(
        name="districts", sources=["inventory"], handlers=DistrictReplica(districts).handlers
    ),
]
