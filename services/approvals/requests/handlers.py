"""Handlers of the submissions that open requests, and of what withdraws them.

From calendar: ``post.submitted`` opens a request (the post's publish time is when it expires);
``post.withdrawn`` (an edit or reopening after submission) and ``post.cancelled`` withdraw it.
From inventory: ``account.requested`` opens one (no expiry); ``account.request_closed`` with
status cancelled withdraws it. Consumers ignore fields they do not know.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.consumer import Handler
from chassis.events import CloudEvent
from services.approvals.policies.schemas import SubjectFacts
from services.approvals.repository import list_root_district_ids
from services.approvals.requests.service import Opening, requests
from services.approvals.vocabulary import SubjectKind

POST_SUBMITTED = "chorus.calendar.post.submitted"
POST_WITHDRAWN = "chorus.calendar.post.withdrawn"
POST_CANCELLED = "chorus.calendar.post.cancelled"
ACCOUNT_REQUESTED = "chorus.inventory.account.requested"
ACCOUNT_REQUEST_CLOSED = "chorus.inventory.account.request_closed"


class VariantText(BaseModel):
    model_config = ConfigDict(extra="ignore")

    platform: str
    text: str | None = None


class PostSubmitted(BaseModel):
    """The fields of post.submitted this service reads."""

    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    district_id: str | None
    author: str
    title: str = ""
    text: str = ""
    variants: list[VariantText] = Field(default_factory=list)
    platforms: list[str] = Field(default_factory=list)
    campaign_tags: list[str] = Field(default_factory=list)
    # The request's expiry: an instant, as approval.requested carries it on.
    publish_at: AwareDatetime | None = None
    content_hash: str


class PostClosed(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    reason: str | None = None


class AccountRequested(BaseModel):
    model_config = ConfigDict(extra="ignore")

    request_id: uuid.UUID
    district_id: str
    platform: str
    handle: str
    display_name: str | None = None
    purpose: str | None = None
    requested_by: str
    snapshot: dict[str, Any]
    content_hash: str


class AccountRequestClosed(BaseModel):
    model_config = ConfigDict(extra="ignore")

    request_id: uuid.UUID
    status: str


async def on_post_submitted(session: AsyncSession, event: CloudEvent) -> None:
    post = PostSubmitted.model_validate(event.data)
    district_id = post.district_id or await _the_root(session)
    texts = [post.title, post.text, *(v.text for v in post.variants if v.text)]
    await requests.open(
        session,
        Opening(
            subject_id=post.id,
            district_id=district_id,
            author=post.author,
            title=post.title,
            snapshot=event.data,
            content_hash=post.content_hash,
            expires_at=post.publish_at,
            facts=SubjectFacts(
                subject_kind=SubjectKind.POST,
                texts=texts,
                platforms=post.platforms,
                campaign_tags=post.campaign_tags,
            ),
            source_event_id=event.id,
        ),
    )


async def _the_root(session: AsyncSession) -> str:
    """Where a company-wide post is decided: the organisation's top district. With several
    (or none yet) there is no answer: the handler fails and the event goes to the DLQ."""
    roots = await list_root_district_ids(session, limit=2)
    if len(roots) != 1:
        raise ValueError(f"a company-wide post needs exactly one top district, found {roots}")
    return str(roots[0])


async def on_post_closed(session: AsyncSession, event: CloudEvent) -> None:
    post = PostClosed.model_validate(event.data)
    reason = post.reason or event.type.rsplit(".", 1)[-1]
    await requests.withdraw(session, SubjectKind.POST, post.id, reason)


async def on_account_requested(session: AsyncSession, event: CloudEvent) -> None:
    asked = AccountRequested.model_validate(event.data)
    texts = [t for t in (asked.handle, asked.display_name, asked.purpose) if t]
    await requests.open(
        session,
        Opening(
            subject_id=asked.request_id,
            district_id=asked.district_id,
            author=asked.requested_by,
            title=f"{asked.platform} @{asked.handle}",
            snapshot=asked.snapshot,
            content_hash=asked.content_hash,
            expires_at=None,
            facts=SubjectFacts(
                subject_kind=SubjectKind.ACCOUNT_REQUEST, texts=texts, platforms=[asked.platform]
            ),
            source_event_id=event.id,
        ),
    )


async def on_account_request_closed(session: AsyncSession, event: CloudEvent) -> None:
    closed = AccountRequestClosed.model_validate(event.data)
    if closed.status == "cancelled":
        await requests.withdraw(
            session, SubjectKind.ACCOUNT_REQUEST, closed.request_id, "cancelled"
        )


CALENDAR_HANDLERS: dict[str, Handler] = {
    POST_SUBMITTED: on_post_submitted,
    POST_WITHDRAWN: on_post_closed,
    POST_CANCELLED: on_post_closed,
}
INVENTORY_HANDLERS: dict[str, Handler] = {
    ACCOUNT_REQUESTED: on_account_requested,
    ACCOUNT_REQUEST_CLOSED: on_account_request_closed,
}
