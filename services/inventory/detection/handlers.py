"""Handlers of the calendar service's events (last activity per account)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.consumer import Handler
from chassis.events import CloudEvent
from services.inventory.detection.service import record_post_published

POST_PUBLISHED = "chorus.calendar.post.published"


class PostPublished(BaseModel):
    """The fields of post.published this service reads."""

    model_config = ConfigDict(extra="ignore")

    account_id: uuid.UUID | None = None
    published_at: datetime | None = None


async def on_post_published(session: AsyncSession, event: CloudEvent) -> None:
    post = PostPublished.model_validate(event.data)
    if post.account_id is None:
        return  # a post on no account of the inventory
    await record_post_published(session, post.account_id, post.published_at or event.time)


HANDLERS: dict[str, Handler] = {POST_PUBLISHED: on_post_published}
