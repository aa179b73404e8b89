"""Async engine and the per-request session (commit on success, roll back on error)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

# Stable constraint names, so Alembic migrations can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


def create_engine(database_url: str, *, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
        pool_recycle=1800,
    )


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=True)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request; services flush, this commits (or rolls back on an exception)."""
    factory: async_sessionmaker[AsyncSession] = request.app.state.session_factory
    async with factory() as session, session.begin():
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def copy_records(
    session: AsyncSession, table: str, columns: Sequence[str], records: Sequence[tuple[Any, ...]]
) -> None:
    """COPY `records` into `table` on the session's connection, inside its open transaction:
    the fast path for bulk writes (imports), tens of times quicker than INSERTs."""
    if not records:
        return
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    # The session has run statements already, so its transaction is open on this connection;
    # a COPY outside of it would commit on its own.
    if driver is None or not driver.is_in_transaction():
        raise RuntimeError("COPY outside the session's transaction")
    await driver.copy_records_to_table(table, columns=list(columns), records=records)
