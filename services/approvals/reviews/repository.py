"""Every query of outside reviewers' invites."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.pagination import PageRequest, page_of
from services.approvals.models import ReviewInvite


async def database_now(session: AsyncSession) -> datetime:
    """The database's clock: links expire by it, whichever machine asks."""
    now: datetime | None = await session.scalar(select(func.now()))
    assert now is not None
    return now


async def list_working_emails(
    session: AsyncSession, request_id: uuid.UUID, position: int
) -> list[str]:
    """The addresses holding a working link (not used, not revoked, not expired) to the
    step."""
    rows = await session.scalars(
        select(ReviewInvite.reviewer_email).where(
            ReviewInvite.request_id == request_id,
            ReviewInvite.position == position,
            ReviewInvite.used_at.is_(None),
            ReviewInvite.revoked_at.is_(None),
            ReviewInvite.expires_at > func.now(),
        )
    )
    return list(rows)


async def list_invites(
    session: AsyncSession,
    request_id: uuid.UUID,
    *,
    position: int | None,
    page: PageRequest,
) -> list[ReviewInvite]:
    """The request's invites (of one step, or all), newest first."""
    query = select(ReviewInvite).where(ReviewInvite.request_id == request_id)
    if position is not None:
        query = query.where(ReviewInvite.position == position)
    query = page_of(query, ReviewInvite.created_at, ReviewInvite.id, page, descending=True)
    return list(await session.scalars(query))


async def lock_invite(
    session: AsyncSession, request_id: uuid.UUID, invite_id: uuid.UUID
) -> ReviewInvite | None:
    """The request's invite, its row locked."""
    found: ReviewInvite | None = await session.scalar(
        select(ReviewInvite)
        .where(ReviewInvite.id == invite_id, ReviewInvite.request_id == request_id)
        .with_for_update()
    )
    return found


async def find_by_token_hash(
    session: AsyncSession, token_hash: bytes, *, lock: bool
) -> tuple[ReviewInvite, datetime] | None:
    """The invite behind a token's hash, with the database's clock; with `lock`, its row
    locked (waiting for a concurrent answer through the same link, then reading it again)."""
    query = select(ReviewInvite, func.now()).where(ReviewInvite.token_hash == token_hash)
    if lock:
        query = query.with_for_update(of=ReviewInvite).execution_options(populate_existing=True)
    row = (await session.execute(query)).first()
    return None if row is None else (row[0], row[1])
