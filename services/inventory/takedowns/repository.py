"""Every query of the takedowns module."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.inventory.models import Account, District, TakedownCase, TakedownNote
from services.inventory.repository import in_districts, newest_first


async def find_under_way(
    session: AsyncSession, account_id: uuid.UUID, closed: Collection[str]
) -> uuid.UUID | None:
    """The id of the account's case that is not in one of the `closed` statuses, if any."""
    return (
        await session.execute(
            select(TakedownCase.id).where(
                TakedownCase.account_id == account_id,
                TakedownCase.status.not_in(sorted(closed)),
            )
        )
    ).scalar()


async def get_account(session: AsyncSession, account_id: uuid.UUID) -> Account:
    """The case's account (accounts are never deleted, so it exists)."""
    return await session.get_one(Account, account_id)


async def count_notes(session: AsyncSession, case_id: uuid.UUID) -> int:
    """The case's plain notes (status changes left out)."""
    count: int = (
        await session.execute(
            select(func.count()).where(
                TakedownNote.case_id == case_id, TakedownNote.status.is_(None)
            )
        )
    ).scalar_one()
    return count


async def list_notes(session: AsyncSession, case_id: uuid.UUID) -> list[TakedownNote]:
    """The case's timeline, oldest first."""
    rows = await session.execute(
        select(TakedownNote).where(TakedownNote.case_id == case_id).order_by(TakedownNote.id)
    )
    return list(rows.scalars())


async def search(
    session: AsyncSession,
    read_paths: Sequence[str],
    *,
    district_path: str | None,
    statuses: Sequence[str],
    account_id: uuid.UUID | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[tuple[TakedownCase, Account]]:
    """Cases with their accounts, newest first in (created_at, id) order, within the caller's
    districts."""
    query = in_districts(
        select(TakedownCase, Account)
        .join(District, District.id == TakedownCase.district_id)
        .join(Account, Account.id == TakedownCase.account_id),
        read_paths,
        district_path,
    )
    if statuses:
        query = query.where(TakedownCase.status.in_(list(statuses)))
    if account_id is not None:
        query = query.where(TakedownCase.account_id == account_id)
    query = newest_first(query, TakedownCase, after=after, limit=limit)
    return [(case, account) for case, account in (await session.execute(query)).all()]
