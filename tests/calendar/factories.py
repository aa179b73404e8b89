"""Factories of the calendar tests: the seeded organisation (districts, accounts, the callers
of each role), files to upload and posts as the posts module stores them. Test files import
them from here, never from one another."""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from services.calendar.accounts.service import AccountEvent, apply_account
from services.calendar.calendars.service import calendar_for
from services.calendar.models import Campaign, Post, PostTarget, districts
from tests.kit import RunningService, as_user, replicate_districts

CENTRAL = as_user("regina", hq="regional_manager")
FR_MANAGER = as_user("francois", fr="district_manager")
FR_WRITER = as_user("fanny", fr="contributor")
PARIS_WRITER = as_user("pierre", **{"fr-paris": "contributor"})
DE_MANAGER = as_user("dieter", de="district_manager")
FR_VIEWER = as_user("victor", fr="viewer")


@dataclass(frozen=True)
class Accounts:
    """Accounts of the seeded organisation, by name."""

    fr_x: uuid.UUID
    fr_instagram: uuid.UUID
    paris_x: uuid.UUID
    de_x: uuid.UUID
    fr_rogue: uuid.UUID
    fr_archived: uuid.UUID


async def seed_districts(service: RunningService) -> None:
    await replicate_districts(service, districts)


async def seed_account(
    service: RunningService,
    platform: str,
    handle: str,
    district_id: str,
    status: str = "official",
) -> uuid.UUID:
    account_id = uuid.uuid4()
    event = AccountEvent(
        id=account_id,
        platform=platform,
        handle=handle,
        district_id=district_id,
        status=status,
        version=1,
    )
    async with service.sessions.begin() as session:
        await apply_account(session, event, full=True)
    return account_id


async def seed_accounts(service: RunningService) -> Accounts:
    return Accounts(
        fr_x=await seed_account(service, "x", "chorus_fr", "fr"),
        fr_instagram=await seed_account(service, "instagram", "chorus.fr", "fr"),
        paris_x=await seed_account(service, "x", "chorus_paris", "fr-paris"),
        de_x=await seed_account(service, "x", "chorus_de", "de"),
        fr_rogue=await seed_account(service, "x", "fr_fake", "fr", status="rogue"),
        fr_archived=await seed_account(service, "x", "fr_old", "fr", status="archived"),
    )


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PDF_MAGIC = b"%PDF-1.7\n"


def png(size: int = 2000) -> bytes:
    """PNG-looking bytes, different on every call."""
    return PNG_MAGIC + os.urandom(size - len(PNG_MAGIC))


def pdf(size: int = 2000) -> bytes:
    return PDF_MAGIC + os.urandom(size - len(PDF_MAGIC))


def mp4(size: int = 2000) -> bytes:
    return b"\x00\x00\x00\x18ftypmp42" + os.urandom(size - 12)


async def upload(
    service: RunningService,
    content: bytes,
    *,
    headers: dict[str, str] = FR_WRITER,
    filename: str = "logo.png",
    content_type: str = "image/png",
    **fields: Any,
) -> Any:
    fields.setdefault("district_id", "fr")
    data = {k: v for k, v in fields.items() if v is not None}
    return await service.client.post(
        "/assets",
        files={"file": (filename, content, content_type)},
        data=data,
        headers=headers,
    )


async def uploaded(service: RunningService, content: bytes, **kwargs: Any) -> dict[str, Any]:
    response = await upload(service, content, **kwargs)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def create_post(
    calendar: RunningService,
    district_id: str | None,
    publish_at: datetime | None,
    *,
    title: str = "A post",
    text: str = "",
    status: str = "draft",
    account_ids: Sequence[uuid.UUID] = (),
    campaign_id: uuid.UUID | None = None,
    assignee: str | None = None,
    due_at: datetime | None = None,
    timezone: str = "Europe/Paris",
    version: int = 1,
) -> uuid.UUID:
    """A post as the posts module stores it, on its district's calendar."""
    async with calendar.sessions.begin() as session:
        on = await calendar_for(session, district_id)
        post = Post(
            id=uuid.uuid4(),
            calendar_id=on.id,
            district_id=district_id,
            title=title,
            text=text,
            publish_at=publish_at,
            timezone=timezone,
            campaign_id=campaign_id,
            author="fanny",
            assignee=assignee,
            due_at=due_at,
            status=status,
            version=version,
            content_hash="0" * 64,
        )
        session.add(post)
        await session.flush()
        for account_id in account_ids:
            session.add(
                PostTarget(
                    post_id=post.id, account_id=account_id, platform="x", publish_at=publish_at
                )
            )
    return post.id


async def create_campaign(calendar: RunningService, district_id: str | None) -> uuid.UUID:
    async with calendar.sessions.begin() as session:
        campaign = Campaign(
            id=uuid.uuid4(),
            district_id=district_id,
            name="Spring",
            starts_on=date(2027, 5, 1),
            ends_on=date(2027, 5, 31),
            created_by="francois",
        )
        session.add(campaign)
    return campaign.id


# Links the service returns are absolute, as clients reach them through the gateway (the
# default public base URL); the in-process client requests their path on the service.
PUBLIC_BASE = "http://localhost:8000/api/calendar"


def on_service(url: str) -> str:
    assert url.startswith(PUBLIC_BASE + "/"), url
    return url.removeprefix(PUBLIC_BASE)
