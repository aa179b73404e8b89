"""The job queue: periodic jobs run by the worker, once per tick however many workers run."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.database import create_engine, create_session_factory
from chassis.jobs import JobQueue, PeriodicJob
from chassis.settings import ServiceSettings
from tests.chassis.kit import eventually
from tests.conftest import INTERNAL_KEY, Infrastructure

pytestmark = pytest.mark.asyncio


async def tick(session: AsyncSession, settings: ServiceSettings) -> None:
    await session.execute(text("INSERT INTO ticks (at) VALUES (clock_timestamp())"))


EVERY_SECOND = PeriodicJob(name="tick", cron=lambda settings: "* * * * * *", run=tick)


async def test_periodic_job_runs_once_per_tick_across_workers(
    infrastructure: Infrastructure,
) -> None:
    name = f"jobs_{uuid.uuid4().hex[:8]}"
    url = await infrastructure.create_database(name)
    settings = ServiceSettings(service_name=name, database_url=url, internal_key=INTERNAL_KEY)
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE ticks (at timestamptz NOT NULL)"))
    sessions = create_session_factory(engine)
    queues = [JobQueue(settings, sessions, [EVERY_SECOND]) for _ in range(2)]
    for queue in queues:
        await queue.open()
    await queues[0].app.schema_manager.apply_schema_async()
    workers = [asyncio.create_task(queue.run_worker()) for queue in queues]
    started = time.monotonic()
    try:

        async def three_ticks() -> bool:
            async with sessions() as session:
                return int((await session.scalar(text("SELECT count(*) FROM ticks"))) or 0) >= 3

        await eventually(three_ticks, within=30)
        await asyncio.sleep(4)
    finally:
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        elapsed = time.monotonic() - started
        for queue in queues:
            await queue.close()
    async with sessions() as session:
        count = int(await session.scalar(text("SELECT count(*) FROM ticks")) or 0)
    await engine.dispose()
    # About one run per second (a starting worker also catches up on the last couple of
    # ticks), not one per worker per second.
    assert 3 <= count <= int(elapsed) + 3
    assert sum(q.runs.get("tick", 0) for q in queues) == count


async def slow_tick(session: AsyncSession, settings: ServiceSettings) -> None:
    await session.execute(text("SELECT pg_sleep(0.6)"))
    await session.execute(text("INSERT INTO ticks (at) VALUES (clock_timestamp())"))


async def test_a_job_may_have_its_own_statement_timeout(infrastructure: Infrastructure) -> None:
    """The engine's statement timeout is sized for requests; a scan that is meant to run long
    says so, and only for its own transaction."""
    name = f"jobs_{uuid.uuid4().hex[:8]}"
    url = await infrastructure.create_database(name)
    settings = ServiceSettings(service_name=name, database_url=url, internal_key=INTERNAL_KEY)
    engine = create_engine(url, statement_timeout=0.2)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE ticks (at timestamptz NOT NULL)"))
    sessions = create_session_factory(engine)
    long_job = PeriodicJob(
        name="long", cron=lambda settings: "* * * * * *", run=slow_tick, statement_timeout=5
    )
    queue = JobQueue(settings, sessions, [long_job])
    await queue.open()
    await queue.app.schema_manager.apply_schema_async()
    worker = asyncio.create_task(queue.run_worker())
    try:

        async def ticked() -> bool:
            async with sessions() as session:
                return int((await session.scalar(text("SELECT count(*) FROM ticks"))) or 0) >= 1

        await eventually(ticked, within=30)
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        await queue.close()
    # The job's timeout was local to its transaction: the pooled connection is back to 0.2 s.
    async with sessions() as session:
        assert await session.scalar(text("SHOW statement_timeout")) == "200ms"
        with pytest.raises(DBAPIError, match="statement timeout"):
            await session.execute(text("SELECT pg_sleep(0.6)"))
    await engine.dispose()
