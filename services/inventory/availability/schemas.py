from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, Field

# "taken": the profile page answers 200; "free": 404 or 410; "unknown": anything else (another
# status, a redirect away from the profile, a timeout, a connection error, a probe refused);
# "invalid": the handle breaks the platform's rules, so it cannot exist there (not probed).
AvailabilityStatus = Literal["taken", "free", "unknown", "invalid"]

PLATFORM_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,49}$"
# More than the registry holds today, few enough that one check stays a bounded amount of work.
MAX_PLATFORMS_PER_CHECK = 50


class PlatformAvailability(BaseModel):
    platform: str
    handle: str = Field(
        description="The handle as the platform shows it (as given when it is invalid there)"
    )
    profile_url: str | None = Field(description="Absent when the handle is invalid there")
    status: AvailabilityStatus
    registered: bool = Field(
        description="An account with this platform and handle is in the inventory"
    )
    account_id: uuid.UUID | None = Field(
        default=None,
        description="The registered account, when it is in a district the caller can read",
    )
    http_status: int | None = Field(
        default=None, description="The status of the last answer of the profile URL, if any"
    )
    reason: str | None = Field(default=None, description="Why the status is unknown or invalid")


class Availability(BaseModel):
    handle: str = Field(description="The handle as asked")
    results: list[PlatformAvailability] = Field(description="One per platform, in asked order")
