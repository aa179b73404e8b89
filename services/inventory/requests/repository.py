"""Every query of the account requests module."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.inventory.models import AccountRequest, District
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


async def get_with_path(
    session: AsyncSession, request_id: uuid.UUID, *, for_update: bool = False
) -> tuple[AccountRequest, str] | None:
    query = (
        select(AccountRequest, District.path)
        .join(District, District.id == AccountRequest.district_id)
        .where(AccountRequest.id == request_id)
    )
    if for_update:
        query = query.with_for_update(of=AccountRequest)
    row = (await session.execute(query)).first()
    return (row[0], row[1]) if row else None


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
    query = (
        select(AccountRequest)
        .join(District, District.id == AccountRequest.district_id)
        .where(
            text("districts.path <@ CAST(:read_paths AS ltree[])").bindparams(
                read_paths=list(read_paths)
            )
        )
    )
    if district_path is not None:
        query = query.where(
            text("districts.path <@ CAST(:under AS ltree)").bindparams(under=district_path)
        )
    if statuses:
        query = query.where(AccountRequest.status.in_(list(statuses)))
    if after is not None:
        query = query.where(
            func.row(AccountRequest.created_at, AccountRequest.id) < func.row(*after)
        )
    query = query.order_by(AccountRequest.created_at.desc(), AccountRequest.id.desc()).limit(limit)
    return list((await session.execute(query)).scalars())
