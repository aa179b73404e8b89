"""Models of the views: the light post summary the range view returns."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from services.calendar.vocabulary import PostStatus

__all__ = ["PostStatus", "PostSummary"]


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
