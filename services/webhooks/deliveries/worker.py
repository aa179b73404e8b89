"""The delivery worker of a worker process: a job queue of its own (``chassis.jobs``, on the
``webhooks_deliveries`` queue of the service's database), sized by
``WEBHOOKS_DELIVERY_CONCURRENCY`` apart from the service's periodic jobs, and the process's
HTTP sender.

``create_service_app`` runs one queue per service, for periodic jobs; deliveries are deferred
one by one with a time, by SQL in the deferring transaction (``repository.defer_delivery``), and
need their own task and concurrency, so the app's lifespan is wrapped to run this worker beside
the chassis's background work (README: a chassis hook would make this unneeded).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import procrastinate
from fastapi import FastAPI

from chassis.app import stop_tasks
from chassis.jobs import JobQueue
from services.webhooks.deliveries.repository import DELIVER_TASK, DELIVERY_QUEUE
from services.webhooks.deliveries.sender import Sender
from services.webhooks.deliveries.service import Deliverer, EndpointSlots
from services.webhooks.runtime import WebhooksRuntime

# A job that fails before it claimed its message (the database away) runs again; after the
# claim, the lease's rescue job covers it.
JOB_RETRY = procrastinate.RetryStrategy(max_attempts=20, wait=2, exponential_wait=2)

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[Any]]


def deliverer_of(app: FastAPI, runtime: WebhooksRuntime) -> Deliverer:
    settings = runtime.settings
    return Deliverer(
        runtime=runtime,
        sessions=app.state.session_factory,
        sender=Sender(
            runtime.guard, settings.delivery_timeout_seconds, settings.response_excerpt_bytes
        ),
        slots=EndpointSlots(settings.endpoint_concurrency),
    )


@contextlib.asynccontextmanager
async def delivery_worker(app: FastAPI, runtime: WebhooksRuntime) -> AsyncIterator[Deliverer]:
    settings = runtime.settings
    deliverer = deliverer_of(app, runtime)
    queue_settings = settings.model_copy(
        update={"service_name": DELIVERY_QUEUE, "job_concurrency": settings.delivery_concurrency}
    )
    queue = JobQueue(queue_settings, app.state.session_factory, [])

    async def deliver(message_id: str, endpoint_id: str, token: int) -> None:
        await deliverer.run(uuid.UUID(message_id), uuid.UUID(endpoint_id), token)

    queue.app.task(name=DELIVER_TASK, queue=DELIVERY_QUEUE, retry=JOB_RETRY)(deliver)
    await queue.open()
    task = asyncio.create_task(queue.run_worker(), name="delivery-worker")
    app.state.deliverer = deliverer
    try:
        yield deliverer
    finally:
        await stop_tasks([task])
        await queue.close()
        await deliverer.sender.close()


def with_delivery_worker(inner: Lifespan, runtime: WebhooksRuntime) -> Lifespan:
    """The app's lifespan, with the delivery worker in processes that run background work."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with inner(app):
            if runtime.settings.process_role == "web":
                yield
                return
            async with delivery_worker(app, runtime):
                yield

    return lifespan
