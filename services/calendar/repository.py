"""How every module of the service writes a row it answers with.

A response shows what the database fills in itself (``created_at``, an ``updated_at`` set to
``now()``), so a row is flushed and then read back before it is returned. The session commits
later, in the request's dependency; nothing here commits.
"""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from services.calendar.models import Base

RowT = TypeVar("RowT", bound=Base)


async def insert_row(session: AsyncSession, row: RowT) -> RowT:
    """Add a new row and read back the values the database gave it."""
    session.add(row)
    return await save_row(session, row)


async def save_row(session: AsyncSession, row: RowT) -> RowT:
    """Write the changes made to `row` and read back the values the database set."""
    await session.flush()
    await session.refresh(row)
    return row
