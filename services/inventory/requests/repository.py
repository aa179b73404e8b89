"""Every query of the account requests module."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.inventory.models import AccountRequest, District
from services.inventory.repository import in_districts, newest_first
from services.inventory.vocabulary import RequestStatus

# Two-key advisory lock namespace for "one open request per platform and handle" (the table
# has no unique index for it); distinct from the outbox's namespace.
REQUEST_LOCK_NAMESPACE = 0x0A11


async def lock_handle(session: AsyncSession, platform: str, handle_key: str) -> None:
    """Serialise the transactions that ask for the same handle, until they commit."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(:namespace, hashtext(:key))"),
        {"namespace": REQUEST_LOCK_NAMESPACE, "key": f"{platform}/{handle_key}"},
    )


async def find_open(
    session: AsyncSession, platform: str, handle_key: str
) -> tuple[AccountRequest, str] | None:
    """The open request for this handle, with its district's path."""
    row = (
        await session.execute(
            select(AccountRequest, District.path)
            .join(District, District.id == AccountRequest.district_id)
            .where(
                AccountRequest.platform == platform,
                AccountRequest.handle_key == handle_key,
                AccountRequest.status == RequestStatus.OPEN,
            )
            .limit(1)
        )
    ).first()
    return (row[0], row[1]) if row else None


async def search(
    session: AsyncSession,
    read_paths: Sequence[str],
    *,
    statuses: Sequence[str],
    district_path: str | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[AccountRequest]:
    """Newest first, in (created_at, id) order, within the caller's districts."""
    query = in_districts(
        select(AccountRequest).join(District, District.id == AccountRequest.district_id),
        read_paths,
        district_path,
    )
    if statuses:
        query = query.where(AccountRequest.status.in_(list(statuses)))
    query = newest_first(query, AccountRequest, after=after, limit=limit)
    return list((await session.execute(query)).scalars())
