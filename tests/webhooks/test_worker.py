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
from tests.webhooks.factories import (
    LOCAL,
    Received,
    Receiver,
    create_endpoint,
    event,
    receiver,
    seed_districts,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]


async def delivered(receiver: Receiver, webhook_id: str, within: float) -> Received:
    """The delivery of `webhook_id` to `receiver`, once it has arrived."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for got in receiver.received:
            if got.headers.get("webhook-id") == webhook_id:
                return got
        await asyncio.sleep(0.05)
    raise AssertionError(f"{webhook_id} not delivered within {within} s")


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
        # The topics are the test session's: other tests' calendar events may reach the fast
        # endpoint too, so this one is found by its webhook-id.
        got = await delivered(fast, str(scheduled.id), within=15)
        # Well before the hanging attempts time out (20 s).
        assert time.monotonic() - started < 15
        assert Webhook(made["secret"]).verify(got.body, got.headers)["id"] == str(scheduled.id)
        # Two slots for the slow endpoint: the rest wait without holding a worker.
        assert len(slow.received) == 2
