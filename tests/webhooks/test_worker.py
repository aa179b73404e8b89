"""Deliveries through the real process: events from the broker, the consumer storing them, the
job queue's worker delivering them to real local receivers. A receiver that hangs does not
delay another."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from tests.conftest import Infrastructure
from tests.kit import running_service, send
from tests.webhooks.factories import LOCAL, create_endpoint, event, receiver, seed_districts

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]


async def test_an_event_on_the_broker_reaches_the_receiver_signed(
    infrastructure: Infrastructure,
) -> None:
    async def hang(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(30)
        return web.Response()

    async with (
        running_service(
            infrastructure,
            "webhooks",
            role="all",
            allow_list=LOCAL,
            delivery_timeout_seconds=20,
            endpoint_concurrency=2,
        ) as webhooks,
        receiver() as fast,
        receiver(hang) as slow,
    ):
        await seed_districts(webhooks)
        made = await create_endpoint(webhooks, fast.url(), event_types=["chorus.calendar.post.*"])
        await create_endpoint(webhooks, slow.url(), event_types=["chorus.approvals.*"])
        # The slow endpoint gets its events first, more than its slots.
        await send(
            infrastructure,
            "chorus.approvals.events",
            *[event("chorus.approvals.approval.escalated") for _ in range(6)],
        )
        await asyncio.wait_for(slow.arrived.wait(), timeout=60)
        started = time.monotonic()
        scheduled = event("chorus.calendar.post.scheduled")
        await send(infrastructure, "chorus.calendar.events", scheduled)
        await asyncio.wait_for(fast.arrived.wait(), timeout=15)
        # Well before the hanging attempts time out.
        assert time.monotonic() - started < 10
        [got] = fast.received
        assert Webhook(made["secret"]).verify(got.body, got.headers)["id"] == str(scheduled.id)
        # Two slots for the slow endpoint: the rest wait without holding a worker.
        assert len(slow.received) == 2
