"""Request and response models of blackout periods."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, model_validator

from chassis.instants import Instant
from services.calendar.calendars.schemas import DistrictId

# A blackout is a pause (an election, a crisis, a quiet period before results), not a way to
# switch a district off: a year at most, leap day included.
MAX_BLACKOUT = timedelta(days=366)


class BlackoutCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    district_id: DistrictId | None = Field(
        default=None, description="The district it applies to (and below); null: company-wide"
    )
    starts_at: Instant = Field(description="First instant of the period (inclusive)")
    ends_at: Instant = Field(description="End of the period (exclusive)")
    reason: str = Field(min_length=1, max_length=500)

    @model_validator(mode="after")
    def _period(self) -> BlackoutCreate:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.ends_at - self.starts_at > MAX_BLACKOUT:
            raise ValueError("a blackout lasts at most one year (366 days)")
        return self


class BlackoutOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    district_id: str | None
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str
    created_at: datetime


class BlackoutCreated(BlackoutOut):
    posts_put_on_hold: int = Field(
        description="Posts that were scheduled inside the blackout and are now on hold "
        "(approved, with the blackout as their status_reason; post.unscheduled for each)"
    )
