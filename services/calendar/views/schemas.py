"""Models of the views: the filters of the range view and the backlog, and the light post
summaries they return."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel, Field

from services.calendar.vocabulary import PostStatus

__all__ = ["BacklogPost", "PostStatus", "PostSummary", "RangeFilters"]


@dataclass(frozen=True)
class RangeFilters:
    """The range view's filters, as the caller names them; they combine."""

    district_id: str | None = None
    calendar_id: uuid.UUID | None = None
    account_ids: Sequence[uuid.UUID] = field(default_factory=tuple)
    campaign_id: uuid.UUID | None = None
    statuses: Sequence[str] = field(default_factory=tuple)
    assignee: str | None = None


class _Summary(BaseModel):
    """What a list of posts shows of each: enough to place and label it, without content."""

    id: uuid.UUID
    calendar_id: uuid.UUID
    district_id: str | None = Field(description="null: a post of the company-wide calendar")
    title: str
    status: PostStatus
    timezone: str = Field(description="IANA zone the post is planned in")
    account_ids: list[uuid.UUID] = Field(description="The accounts it publishes on")
    campaign_id: uuid.UUID | None
    author: str
    assignee: str | None
    due_at: datetime | None
    version: int


class PostSummary(_Summary):
    """A post as a calendar view shows it."""

    publish_at: datetime = Field(description="The instant it publishes (UTC)")


class BacklogPost(_Summary):
    """A post of the backlog: it has no publication time yet."""

    publish_at: None = Field(default=None, description="Always null in the backlog")
    created_at: datetime
