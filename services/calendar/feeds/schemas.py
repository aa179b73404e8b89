"""Models of feed tokens."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

# The settings cap it further (CALENDAR_FEED_TOKEN_MAX_DAYS); this only bounds the input.
MAX_DAYS_ACCEPTED = 3660


class FeedTokenStatus(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


class FeedTokenFilter(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"
    ALL = "all"


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
    expires_in_days: int | None = Field(
        default=None,
        ge=1,
        le=MAX_DAYS_ACCEPTED,
        description="Days the token works; left out: the service's default "
        "(CALENDAR_FEED_TOKEN_DEFAULT_DAYS, 90); more than CALENDAR_FEED_TOKEN_MAX_DAYS "
        "(365) is refused",
    )


class FeedTokenRenew(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expires_in_days: int | None = Field(
        default=None,
        ge=1,
        le=MAX_DAYS_ACCEPTED,
        description="Days from now the token works; left out: the service's default",
    )


class FeedTokenOut(BaseModel):
    """A token as listed: never the secret, only its first characters."""

    id: uuid.UUID
    calendar_id: uuid.UUID
    district_id: str | None = Field(description="The calendar's district; null: company-wide")
    label: str | None
    include_subtree: bool
    token_prefix: str | None = Field(
        description="The token's first characters, to tell URLs apart (null for tokens made "
        "before they were kept)"
    )
    status: FeedTokenStatus
    created_by: str
    created_at: datetime
    expires_at: datetime
    renewed_by: str | None
    renewed_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None = Field(description="When a calendar client last fetched it")


class FeedTokenCreated(FeedTokenOut):
    token: str = Field(description="The secret; shown this once, only its hash is kept")
    url_path: str = Field(
        description="The feed's path in the calendar service, /public/feeds/<token>.ics"
    )
    url: str = Field(
        description="The feed's absolute URL through the gateway; subscribe to it (webcal or "
        "https) from a calendar client"
    )
