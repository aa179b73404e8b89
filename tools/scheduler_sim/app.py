"""The simulator's FastAPI app; ``create_app`` is also a uvicorn ``--factory``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI

from tools.scheduler_sim.api import router
from tools.scheduler_sim.runtime import Runtime
from tools.scheduler_sim.settings import SchedulerSimSettings


def _now() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: SchedulerSimSettings | None = None, clock: Callable[[], datetime] = _now
) -> FastAPI:
    settings = settings or SchedulerSimSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime(settings, clock)
        app.state.runtime = runtime
        runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title="Scheduler simulator",
        description="A Hootsuite-like scheduler that receives Chorus's scheduled posts, "
        "publishes them and calls back.",
        lifespan=lifespan,
    )
    app.include_router(router)
    return app
