"""Models of feed tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class FeedTokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="What the token is for (e.g. 'Outlook of the Paris team')",
    )
    include_subtree: bool = Field(
        default=False,
        description="Also show the posts of the districts below the calendar's district (on "
        "the company-wide calendar: every district's, for those who read them all)",
    )


class FeedTokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    calendar_id: uuid.UUID
    label: str | None
    include_subtree: bool
    created_by: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None = Field(description="When a calendar client last fetched it")


class FeedTokenCreated(FeedTokenOut):
    token: str = Field(description="The secret; shown this once, only its hash is kept")
    url_path: str = Field(
        description="The feed's path at the gateway, e.g. /public/feeds/<token>.ics; "
        "subscribe to it (webcal or https) from a calendar client"
    )
