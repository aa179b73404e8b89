"""Delayed, retried and periodic jobs on the service's own PostgreSQL, through procrastinate.

DESIGN.md asks for a well-kept PostgreSQL job queue rather than one written here. Each service
that has jobs gets its own queue in its own database (its migrations create procrastinate's
schema with `chassis.migrations.create_job_queue_schema`). Every process can defer jobs; worker
processes (role "worker" or "all") run them. A periodic job is deferred once per tick however
many workers run (procrastinate's periodic defers are unique per timestamp).

A job runs in one database transaction of its own: it gets a session, flushes, and the worker
commits, so a job's state change and its outbox events commit together.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import procrastinate
import psycopg_pool
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis.database import set_statement_timeout
from chassis.outbox import asyncpg_dsn
from chassis.settings import ServiceSettings

log = logging.getLogger("chassis.jobs")

WORKER_RESTART_SECONDS = 5.0

JobBody = Callable[[AsyncSession, ServiceSettings], Awaitable[object]]


@dataclass(frozen=True)
class PeriodicJob:
    """`run(session, settings)` on the schedule `cron(settings)` gives: five cron fields, or
    six with seconds last (procrastinate's syntax)."""

    name: str
    cron: Callable[[ServiceSettings], str]
    run: JobBody
    # Seconds a statement of this job may run (0: no limit); None keeps the engine's
    # statement timeout, which is sized for requests.
    statement_timeout: float | None = None


class JobQueue:
    def __init__(
        self,
        settings: ServiceSettings,
        session_factory: async_sessionmaker[AsyncSession],
        periodic: Sequence[PeriodicJob],
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.queue = settings.service_name
        self.pool = psycopg_pool.AsyncConnectionPool(
            conninfo=asyncpg_dsn(settings.database_url),
            min_size=1,
            max_size=settings.job_concurrency + 2,
            open=False,
            check=psycopg_pool.AsyncConnectionPool.check_connection,
        )
        self.app = procrastinate.App(connector=procrastinate.PsycopgConnector())
        self.runs: dict[str, int] = {}
        for job in periodic:
            self._add_periodic(job)

    def _add_periodic(self, job: PeriodicJob) -> None:
        async def run(timestamp: int) -> None:
            async with self.session_factory() as session, session.begin():
                if job.statement_timeout is not None:
                    await set_statement_timeout(session, job.statement_timeout)
                await job.run(session, self.settings)
            self.runs[job.name] = self.runs.get(job.name, 0) + 1

        run.__name__ = run.__qualname__ = job.name
        task = self.app.task(name=f"{self.queue}.{job.name}", queue=self.queue)(run)
        self.app.periodic(cron=job.cron(self.settings), periodic_id=job.name)(task)

    async def open(self) -> None:
        # Not waiting for connections: a service starts, and reports itself not ready, while
        # its database is down; the pool connects when the database is back.
        await self.pool.open(wait=False)
        await self.app.open_async(pool=self.pool)

    async def close(self) -> None:
        await self.app.close_async()
        await self.pool.close()

    async def run_worker(self) -> None:
        """The worker, restarted after a failure (the database going away, say)."""
        while True:
            try:
                await self.app.run_worker_async(
                    queues=[self.queue],
                    concurrency=self.settings.job_concurrency,
                    install_signal_handlers=False,
                    listen_notify=True,
                    delete_jobs="successful",
                    name=f"{self.queue}-worker",
                )
                # It returns when stopped: procrastinate turns a cancellation into a graceful
                # stop and does not re-raise it.
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job worker of %s failed; restarting", self.queue)
            await asyncio.sleep(WORKER_RESTART_SECONDS)
