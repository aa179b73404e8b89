"""Deliveries: matching and storing, Standard Webhooks signatures checked by the
``standardwebhooks`` package on a real local receiver, each status code's handling, the retry
schedule on an injected clock, the address guard at delivery time."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from services.webhooks.deliveries.schedule import RETRY_DELAYS
from services.webhooks.deliveries.service import Deliverer
from services.webhooks.deliveries.worker import deliverer_of
from tests.kit import RunningService
from tests.webhooks.factories import (
    CENTRAL,
    FR_MANAGER,
    PARIS_MANAGER,
    FakeResolver,
    create_endpoint,
    event,
    jobs_of,
    receiver,
    status,
    store,
)

pytestmark = pytest.mark.asyncio


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest_asyncio.fixture
async def deliverer(webhooks: RunningService) -> AsyncIterator[Deliverer]:
    """The delivery job's body, run by the test instead of a worker; no jitter."""
    runtime = webhooks.app.state.webhooks
    runtime.jitter = lambda delay: delay
    made = deliverer_of(webhooks.app, runtime)
    yield made
    await made.sender.close()


async def attempt(deliverer: Deliverer, message: dict[str, Any], token: int | None = None) -> None:
    """Run the message's job in force (or one with `token`)."""
    await deliverer.run(
        uuid.UUID(message["id"]),
        uuid.UUID(message["endpoint_id"]),
        message["job_token"] if token is None else token,
    )


async def reread(webhooks: RunningService, message: dict[str, Any]) -> dict[str, Any]:
    return dict(
        await webhooks.scalar("SELECT to_json(m) FROM messages m WHERE id = :id", id=message["id"])
    )


async def attempts_of(webhooks: RunningService, message: dict[str, Any]) -> list[dict[str, Any]]:
    return list(
        await webhooks.scalar(
            "SELECT coalesce(json_agg(to_json(a) ORDER BY id), '[]') FROM attempts a"
            " WHERE message_id = :id",
            id=message["id"],
        )
    )


class TestMatching:
    async def test_an_event_is_stored_for_each_matching_endpoint_once(
        self, webhooks: RunningService
    ) -> None:
        url = "http://127.0.0.1:9/hook"
        posts = await create_endpoint(webhooks, url, event_types=["chorus.calendar.post.*"])
        exact = await create_endpoint(webhooks, url, event_types=["chorus.calendar.post.scheduled"])
        paris = await create_endpoint(webhooks, url, district_id="fr-paris", headers=PARIS_MANAGER)
        everything = await create_endpoint(webhooks, url, district_id=None, headers=CENTRAL)
        await create_endpoint(webhooks, url, event_types=["chorus.approvals.*"])
        off = await create_endpoint(webhooks, url, enabled=False)

        scheduled = event("chorus.calendar.post.scheduled", district_id="fr")
        stored = await store(webhooks, scheduled)
        assert {m["endpoint_id"] for m in stored} == {posts["id"], exact["id"], everything["id"]}
        assert off["id"] not in {m["endpoint_id"] for m in stored}
        assert all(m["payload"]["id"] == str(scheduled.id) for m in stored)
        assert all(m["status"] == "pending" for m in stored)
        # Redelivered: nothing new.
        assert len(await store(webhooks, scheduled)) == 3
        # Each message's first attempt is deferred, due now.
        for message in stored:
            [job] = await jobs_of(webhooks, message["id"])
            assert job["token"] == 0
            assert job["scheduled_at"] is None
        # A Paris event reaches the Paris endpoint and the French ones above it.
        in_paris = await store(webhooks, event(district_id="fr-paris"))
        assert paris["id"] in {m["endpoint_id"] for m in in_paris}
        # By path too, as the event carries it.
        by_path = await store(webhooks, event(district_id=None, district_path="hq.fr.fr-paris"))
        assert paris["id"] in {m["endpoint_id"] for m in by_path}
        # Germany's events do not reach France's endpoints; an event of no district reaches
        # only endpoints without a district filter.
        in_germany = await store(webhooks, event(district_id="de"))
        assert {m["endpoint_id"] for m in in_germany} == {everything["id"]}
        nowhere = await store(webhooks, event(district_id=None))
        assert {m["endpoint_id"] for m in nowhere} == {everything["id"]}


async def test_a_delivery_is_signed_as_standard_webhooks_say(
    webhooks: RunningService, deliverer: Deliverer
) -> None:
    async with receiver() as box:
        created = await create_endpoint(webhooks, box.url())
        [message] = await store(webhooks, event())
        await attempt(deliverer, message)
        [got] = box.received
        # The receiver verifies with the package, on the raw body.
        payload = Webhook(created["secret"]).verify(got.body, got.headers)
        assert payload == message["payload"]
        assert got.headers["webhook-id"] == message["payload"]["id"]
        assert got.headers["content-type"] == "application/json"
        with pytest.raises(WebhookVerificationError):
            Webhook("whsec_" + "A" * 43 + "=").verify(got.body, got.headers)
    done = await reread(webhooks, message)
    assert done["status"] == "succeeded"
    assert done["next_attempt_at"] is None
    [logged] = await attempts_of(webhooks, message)
    assert logged["outcome"] == "succeeded"
    assert logged["status_code"] == 200
    assert logged["response_excerpt"] == "ok"
    assert logged["address"] == "127.0.0.1"


async def test_during_a_rotation_deliveries_carry_both_signatures(
    webhooks: RunningService, deliverer: Deliverer
) -> None:
    clock = Clock(datetime.now(UTC))
    webhooks.app.state.webhooks.clock = clock
    async with receiver() as box:
        created = await create_endpoint(webhooks, box.url())
        rotated = (
            await webhooks.client.post(
                f"/endpoints/{created['id']}/secret/rotate", headers=FR_MANAGER
            )
        ).json()
        [message] = await store(webhooks, event())
        await attempt(deliverer, message)
        [got] = box.received
        assert len(got.headers["webhook-signature"].split(" ")) == 2
        Webhook(created["secret"]).verify(got.body, got.headers)
        Webhook(rotated["secret"]).verify(got.body, got.headers)
        # After the overlap, only the new secret signs.
        clock.now += timedelta(hours=24, seconds=1)
        [later] = await store(webhooks, event())
        await attempt(deliverer, later)
        last = box.received[-1]
        assert len(last.headers["webhook-signature"].split(" ")) == 1
        # (The old secret no longer matches; the timestamp is checked against the real clock,
        # so the signature is checked by hand.)
        stamp = datetime.fromtimestamp(int(last.headers["webhook-timestamp"]), UTC)
        assert last.headers["webhook-signature"] == Webhook(rotated["secret"]).sign(
            last.headers["webhook-id"], stamp, last.body.decode()
        )


async def test_a_failure_is_retried_on_the_schedule(
    webhooks: RunningService, deliverer: Deliverer
) -> None:
    clock = Clock(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    webhooks.app.state.webhooks.clock = clock
    async with receiver(status(500, body="x" * 5000)) as box:
        created = await create_endpoint(webhooks, box.url())
        [message] = await store(webhooks, event())
        for number, delay in enumerate(RETRY_DELAYS, start=1):
            message = await reread(webhooks, message)
            await attempt(deliverer, message)
            message = await reread(webhooks, message)
            assert message["attempts"] == number
            assert message["status"] == "pending"
            due = datetime.fromisoformat(message["next_attempt_at"])
            assert due == clock.now + delay
            job = (await jobs_of(webhooks, message["id"]))[-1]
            assert job["token"] == message["job_token"]
            assert datetime.fromisoformat(job["scheduled_at"]) == due
            clock.now = due
        await attempt(deliverer, message)
        assert len(box.received) == len(RETRY_DELAYS) + 1
    message = await reread(webhooks, message)
    assert message["status"] == "failed"
    assert message["attempts"] == 10
    logged = await attempts_of(webhooks, message)
    assert [a["number"] for a in logged] == list(range(1, 11))
    assert {a["status_code"] for a in logged} == {500}
    assert len(logged[0]["response_excerpt"]) == 1024
    [exhausted] = await webhooks.events("chorus.webhooks.webhook.delivery_exhausted")
    assert exhausted["data"]["message_id"] == message["id"]
    assert exhausted["data"]["endpoint_id"] == created["id"]
    assert exhausted["data"]["attempts"] == 10
    assert exhausted["data"]["last_status_code"] == 500


async def test_a_stale_job_does_nothing(webhooks: RunningService, deliverer: Deliverer) -> None:
    async with receiver() as box:
        await create_endpoint(webhooks, box.url())
        [message] = await store(webhooks, event())
        await attempt(deliverer, message, token=message["job_token"] + 7)
        assert box.received == []
        await attempt(deliverer, message)
        await attempt(deliverer, message)  # the same job again: the message is claimed
        assert len(box.received) == 1


async def test_jitter_spreads_the_retries(webhooks: RunningService, deliverer: Deliverer) -> None:
    webhooks.app.state.webhooks.jitter = lambda delay: delay * 1.1
    clock = Clock(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    webhooks.app.state.webhooks.clock = clock
    async with receiver(status(500)) as box:
        await create_endpoint(webhooks, box.url())
        [message] = await store(webhooks, event())
        await attempt(deliverer, message)
    message = await reread(webhooks, message)
    assert datetime.fromisoformat(message["next_attempt_at"]) == clock.now + timedelta(seconds=5.5)


@pytest.mark.parametrize(
    ("code", "headers", "delay"),
    [
        (429, {"Retry-After": "120"}, timedelta(seconds=120)),
        (503, {"Retry-After": "7"}, timedelta(seconds=7)),
        (503, {}, RETRY_DELAYS[0]),
        (500, {"Retry-After": "120"}, RETRY_DELAYS[0]),  # only 429 and 503 ask to wait
        (302, {"Location": "http://127.0.0.1:1/elsewhere"}, RETRY_DELAYS[0]),
        (404, {}, RETRY_DELAYS[0]),
    ],
)
async def test_status_codes_decide_the_next_attempt(
    webhooks: RunningService,
    deliverer: Deliverer,
    code: int,
    headers: dict[str, str],
    delay: timedelta,
) -> None:
    clock = Clock(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    webhooks.app.state.webhooks.clock = clock
    async with receiver(status(code, headers)) as box:
        await create_endpoint(webhooks, box.url())
        [message] = await store(webhooks, event())
        await attempt(deliverer, message)
        # A redirect is not followed: one request reached the receiver, none elsewhere.
        assert [r.path for r in box.received] == ["/hook"]
    message = await reread(webhooks, message)
    assert message["status"] == "pending"
    assert datetime.fromisoformat(message["next_attempt_at"]) == clock.now + delay
    [logged] = await attempts_of(webhooks, message)
    assert logged["status_code"] == code
    assert logged["outcome"] == "failed"


async def test_retry_after_as_a_date(webhooks: RunningService, deliverer: Deliverer) -> None:
    clock = Clock(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    webhooks.app.state.webhooks.clock = clock
    async with receiver(status(429, {"Retry-After": "Tue, 01 Dec 2026 09:10:00 GMT"})) as box:
        await create_endpoint(webhooks, box.url())
        [message] = await store(webhooks, event())
        await attempt(deliverer, message)
    message = await reread(webhooks, message)
    assert datetime.fromisoformat(message["next_attempt_at"]) == clock.now + timedelta(minutes=10)


async def test_gone_disables_the_endpoint(webhooks: RunningService, deliverer: Deliverer) -> None:
    async with receiver(status(410)) as box:
        created = await create_endpoint(webhooks, box.url())
        [first] = await store(webhooks, event())
        [second] = await store(webhooks, event())
        await attempt(deliverer, first)
        await attempt(deliverer, second)  # its endpoint is off: not sent
        assert len(box.received) == 1
    endpoint = (await webhooks.client.get(f"/endpoints/{created['id']}", headers=FR_MANAGER)).json()
    assert endpoint["enabled"] is False
    assert endpoint["disabled_reason"] == "gone"
    assert (await reread(webhooks, first))["status"] == "failed"
    assert (await reread(webhooks, second))["status"] == "failed"
    [disabled] = await webhooks.events("chorus.webhooks.webhook.endpoint_disabled")
    assert disabled["data"]["endpoint_id"] == created["id"]
    assert disabled["data"]["reason"] == "gone"
    # Disabled, it matches no new event.
    assert await store(webhooks, event()) == []


async def test_an_endpoint_failing_for_five_days_is_disabled(
    webhooks: RunningService, deliverer: Deliverer
) -> None:
    clock = Clock(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    webhooks.app.state.webhooks.clock = clock
    async with receiver(status(500)) as box:
        created = await create_endpoint(webhooks, box.url())
        [first] = await store(webhooks, event())
        await attempt(deliverer, first)
        clock.now += timedelta(days=4, hours=23)
        [second] = await store(webhooks, event())
        await attempt(deliverer, second)
        assert (await reread(webhooks, second))["status"] == "pending"
        clock.now += timedelta(hours=1)
        [third] = await store(webhooks, event())
        await attempt(deliverer, third)
    endpoint = (await webhooks.client.get(f"/endpoints/{created['id']}", headers=FR_MANAGER)).json()
    assert endpoint["enabled"] is False
    assert endpoint["disabled_reason"] == "failing"
    [disabled] = await webhooks.events("chorus.webhooks.webhook.endpoint_disabled")
    assert disabled["data"]["reason"] == "failing"
    assert {(await reread(webhooks, m))["status"] for m in (first, second, third)} == {"failed"}


async def test_a_success_closes_the_failure_window(
    webhooks: RunningService, deliverer: Deliverer
) -> None:
    answers = [500, 200]

    async def flaky(request: web.Request) -> web.StreamResponse:
        return web.Response(status=answers.pop(0))

    async with receiver(flaky) as box:
        created = await create_endpoint(webhooks, box.url())
        [message] = await store(webhooks, event())
        await attempt(deliverer, message)
        failing = await webhooks.client.get(f"/endpoints/{created['id']}", headers=FR_MANAGER)
        assert failing.json()["failing_since"] is not None
        await attempt(deliverer, await reread(webhooks, message))
        assert len(box.received) == 2
    endpoint = (await webhooks.client.get(f"/endpoints/{created['id']}", headers=FR_MANAGER)).json()
    assert endpoint["failing_since"] is None
    assert (await reread(webhooks, message))["status"] == "succeeded"


async def test_a_receiver_that_does_not_answer_in_time_is_a_failed_attempt(
    webhooks: RunningService, deliverer: Deliverer
) -> None:
    deliverer.sender.timeout = 0.5

    async def hang(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(5)
        return web.Response()

    async with receiver(hang) as box:
        await create_endpoint(webhooks, box.url())
        [message] = await store(webhooks, event())
        await attempt(deliverer, message)
    [logged] = await attempts_of(webhooks, message)
    assert logged["outcome"] == "error"
    assert logged["error"].startswith("timeout")
    assert logged["status_code"] is None
    assert (await reread(webhooks, message))["status"] == "pending"


async def test_the_address_is_checked_again_at_delivery(
    webhooks: RunningService, deliverer: Deliverer
) -> None:
    """DNS rebinding: the name was public when saved, it is private when delivered to."""
    resolver = FakeResolver({"hooks.example.com": ["93.184.215.14"]})
    webhooks.app.state.webhooks.guard.resolver = resolver
    async with receiver() as box:
        created = await create_endpoint(webhooks, "https://hooks.example.com/x")
        resolver.names["hooks.example.com"] = ["127.0.0.1", "10.0.0.1"]
        [message] = await store(webhooks, event())
        await attempt(deliverer, message)
        assert box.received == []
    [logged] = await attempts_of(webhooks, message)
    assert logged["outcome"] == "error"
    assert "refused" in logged["error"]
    assert "10.0.0.1 is a private address" in logged["error"]
    assert created["id"] == logged["endpoint_id"]


async def test_an_attempt_cut_short_is_made_again_by_its_lease(
    webhooks: RunningService, deliverer: Deliverer
) -> None:
    """A process killed after claiming a message, before recording the attempt: the rescue job
    deferred with the claim attempts it again (at least once)."""
    clock = Clock(datetime.now(UTC))
    webhooks.app.state.webhooks.clock = clock
    async with receiver() as box:
        created = await create_endpoint(webhooks, box.url())
        [message] = await store(webhooks, event())
        async with webhooks.sessions.begin() as session:
            claim = await deliverer.claim(session, uuid.UUID(message["id"]), 0)
        assert claim is not None
        # ...the process dies here: nothing was sent, nothing recorded.
        leased = await reread(webhooks, message)
        assert leased["status"] == "pending"
        lease_end = datetime.fromisoformat(leased["next_attempt_at"])
        assert lease_end == clock.now + timedelta(seconds=15 + 30)
        rescue = (await jobs_of(webhooks, message["id"]))[-1]
        assert rescue["token"] == leased["job_token"] == claim.token
        assert datetime.fromisoformat(rescue["scheduled_at"]) == lease_end
        # The original job, run again by the queue, is stale; the rescue delivers.
        await attempt(deliverer, message, token=0)
        assert box.received == []
        await attempt(deliverer, leased)
        [got] = box.received
        Webhook(created["secret"]).verify(got.body, got.headers)
    assert (await reread(webhooks, message))["status"] == "succeeded"
