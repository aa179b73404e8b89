"""Models of the views: the filters of the range view and the light post summary it returns."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel, Field

from services.calendar.vocabulary import PostStatus

__all__ = ["PostStatus", "PostSummary", "RangeFilters"]


@dataclass(frozen=True)
class RangeFilters:
    """The range view's filters, as the caller names them; they combine."""

    district_id: str | None = None
    calendar_id: uuid.UUID | None = None
    account_ids: Sequence[uuid.UUID] = field(default_factory=tuple)
    campaign_id: uuid.UUID | None = None
    statuses: Sequence[str] = field(default_factory=tuple)
    assignee: str | None = None


class PostSummary(BaseModel):
    """A post as a calendar view shows it: enough to place and label it, without content."""

    id: uuid.UUID
    calendar_id: uuid.UUID
    district_id: str | None = Field(description="null: a post of the company-wide calendar")
    title: str
    status: PostStatus
    publish_at: datetime = Field(description="The instant it publishes (UTC)")
    timezone: str = Field(description="IANA zone the post is planned in")
    account_ids: list[uuid.UUID] = Field(description="The accounts it publishes on")
    campaign_id: uuid.UUID | None
    author: str
    assignee: str | None
    due_at: datetime | None
    version: int
