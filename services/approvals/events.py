"""Events the approvals service publishes, and the consumers of those it reads.

Published on `chorus.approvals.events` (type `chorus.approvals.approval.<verb>`, subject the
request id; data carries `request_id`, `subject_kind`, `subject_id`, `district_id`,
`content_hash`, `status`): approval.requested, approval.step_decided, approval.granted,
approval.rejected, approval.changes_requested, approval.escalated, approval.reminded,
approval.expired, approval.superseded, approval.withdrawn.

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
