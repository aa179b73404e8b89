"""Async engine and the per-request session.

The request's session commits when the handler has returned and before the response is sent:
a client never sees a 2xx for a write that did not commit, and its next read sees the write.
FastAPI runs the exit code of a ``yield`` dependency after the response by default; the
session is therefore split in two dependencies:

- ``open_session`` (request scope) opens the session and closes it after the response, so a
  streamed response may still read through it;
- ``get_session`` (function scope, behind ``SessionDep``) commits, or rolls back when the
  handler raised, as soon as the handler returns.

A commit can fail for reasons the client did not cause and the service could not check
before: a deferred constraint (409), a serialisation failure or deadlock with a concurrent
transaction (409, worth a retry), a lost connection or a timeout (503). Those become
problem+json here; any other database error stays a 500, the bug it is.

Every connection of the engine carries PostgreSQL's ``statement_timeout`` and
``idle_in_transaction_session_timeout`` (settings), so a slow query or a transaction left open
by a stalled client cannot hold a connection and its locks for long.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import BigInteger, DateTime, Identity, MetaData, Text, func, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import mapped_column

from chassis.consistency import hand_over
from chassis.errors import Conflict, Problem

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


# The column type of each Python type a service's ``Mapped[...]`` annotations use, for its
# declarative base's ``type_annotation_map``: text without a length, instants with their time
# zone, UUIDs as ``uuid.UUID``. An annotation then says all a plain column needs
# (``title: Mapped[str | None]``); ``mapped_column`` is left for what is not plain.
COLUMN_TYPES: dict[Any, Any] = {
    str: Text(),
    datetime: DateTime(timezone=True),
    uuid.UUID: UUID(as_uuid=True),
}

# Columns every service declares alike, as types for ``Mapped[...]`` (SQLAlchemy copies the
# column of the annotation into each table that uses it): ``id: Mapped[UuidKey]``.
UuidKey = Annotated[uuid.UUID, mapped_column(UUID(as_uuid=True), primary_key=True)]
# The key of an append-only log (history, decisions): the database numbers the rows in order.
SerialKey = Annotated[int, mapped_column(BigInteger, Identity(always=True), primary_key=True)]
# When the row was inserted, by the database's clock.
InsertedAt = Annotated[datetime, mapped_column(DateTime(timezone=True), server_default=func.now())]


def create_engine(
    database_url: str,
    *,
    pool_size: int = 10,
    statement_timeout: float | None = None,
    idle_in_transaction_timeout: float | None = None,
) -> AsyncEngine:
    """The engine; the timeouts (seconds, 0 = none) are set on every connection it opens."""
    server_settings: dict[str, str] = {}
    if statement_timeout is not None:
        server_settings["statement_timeout"] = str(round(statement_timeout * 1000))
    if idle_in_transaction_timeout is not None:
        server_settings["idle_in_transaction_session_timeout"] = str(
            round(idle_in_transaction_timeout * 1000)
        )
    return create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
        pool_recycle=1800,
        connect_args={"server_settings": server_settings} if server_settings else {},
    )


def one_of(column: str, vocabulary: type[StrEnum]) -> str:
    """A check constraint's text: `column` holds one of the vocabulary's values."""
    return f"{column} IN ({', '.join(repr(member.value) for member in vocabulary)})"


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=True)


async def set_statement_timeout(session: AsyncSession, seconds: float) -> None:
    """Give the session's open transaction its own statement timeout (0: none), in place of
    the engine's. Local to the transaction, so the pooled connection does not keep it. For
    background work that is meant to take long (a scan of every account), never for a
    request."""
    await session.execute(
        text("SELECT set_config('statement_timeout', :ms, true)"),
        {"ms": str(round(seconds * 1000))},
    )


class CommitConflict(Conflict):
    type_slug = "commit-conflict"
    title = "The change conflicts with saved data"


class TransactionConflict(Conflict):
    type_slug = "transaction-conflict"
    title = "A concurrent change got in the way"


class DatabaseUnavailable(Problem):
    status = 503
    type_slug = "database-unavailable"
    title = "The database is unavailable"


# SQLSTATEs (PostgreSQL appendix A) of a concurrent transaction's doing: retrying may succeed.
_CONCURRENCY = frozenset({"40001", "40P01"})
# The statement ran out of time (statement_timeout, or cancelled), or a lock was not granted.
_TIMED_OUT = frozenset({"57014", "55P03"})


def database_problem(error: DBAPIError, *, at_commit: bool) -> Problem | None:
    """The problem a client should see for a database error, or None for a bug (a 500)."""
    sqlstate = getattr(error.orig, "sqlstate", None) or ""
    if error.connection_invalidated or sqlstate.startswith("08") or sqlstate == "57P01":
        return DatabaseUnavailable("The database connection was lost; nothing was saved.")
    if sqlstate in _TIMED_OUT:
        return DatabaseUnavailable("The database took too long to answer; nothing was saved.")
    if sqlstate in _CONCURRENCY:
        return TransactionConflict(
            "A concurrent change to the same data got in the way; nothing was saved. "
            "Read the data again and retry."
        )
    # A constraint that fails at commit is a deferred one: the service could not check it
    # before, so it is the state of the data, not the service, that refuses the change. The
    # same error before commit means a service forgot a check: that stays a 500.
    if at_commit and sqlstate.startswith("23"):
        return CommitConflict("The change conflicts with data saved meanwhile; nothing was saved.")
    return None


async def open_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session, closed once the response is sent (see the module docstring)."""
    factory: async_sessionmaker[AsyncSession] = request.app.state.session_factory
    async with factory() as session:
        yield session


async def get_session(
    request: Request, session: Annotated[AsyncSession, Depends(open_session)]
) -> AsyncIterator[AsyncSession]:
    """One session per request; services flush, this commits before the response is sent (or
    rolls back on an exception). Once committed, the events the request published become its
    consistency token (``chassis.consistency``)."""
    try:
        yield session
        # What the service left unflushed is its own statement, not a deferred check.
        await session.flush()
    except DBAPIError as exc:
        await _rollback(session)
        problem = database_problem(exc, at_commit=False)
        if problem is None:
            raise
        raise problem from exc
    except BaseException:
        await _rollback(session)
        raise
    try:
        await session.commit()
    except DBAPIError as exc:
        await _rollback(session)
        problem = database_problem(exc, at_commit=True)
        if problem is None:
            raise
        raise problem from exc
    hand_over(session, request)


async def _rollback(session: AsyncSession) -> None:
    # On a lost connection the rollback fails too; the error worth reporting is the first one.
    with contextlib.suppress(DBAPIError, OSError):
        await session.rollback()


# scope="function": the exit code above runs before the response goes out, not after it.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


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
