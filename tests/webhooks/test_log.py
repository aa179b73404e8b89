"""The delivery log (messages and attempts per endpoint and per message, paged, scoped),
replays of one message or of an endpoint's failed messages, and the pruning of old attempts."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from standardwebhooks.webhooks import Webhook

from services.webhooks.deliveries.service import Deliverer
from services.webhooks.deliveries.worker import deliverer_of
from services.webhooks.jobs import prune_attempts
from tests.kit import RunningService
from tests.webhooks.factories import (
    DE_MANAGER,
    FR_MANAGER,
    create_endpoint,
    event,
    execute,
    jobs_of,
    receiver,
    status,
    store,
)

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def deliverer(webhooks: RunningService) -> AsyncIterator[Deliverer]:
    made = deliverer_of(webhooks.app, webhooks.app.state.webhooks)
    yield made
    await made.sender.close()


async def run_job(deliverer: Deliverer, webhooks: RunningService, message_id: str) -> None:
    """The message's job in force, as the worker would run it."""
    row = await webhooks.scalar(
        "SELECT json_build_array(endpoint_id, job_token) FROM messages WHERE id = :id",
        id=message_id,
    )
    await deliverer.run(uuid.UUID(message_id), uuid.UUID(row[0]), row[1])


async def test_attempts_are_listed_per_endpoint_and_per_message(
    webhooks: RunningService, deliverer: Deliverer
) -> None:
    answers = iter([500, 200, 200])

    async def answer(request: object) -> object:
        return await status(next(answers), body="a" * 2000)(request)  # type: ignore[arg-type]

    async with receiver(answer) as box:  # type: ignore[arg-type]
        created = await create_endpoint(webhooks, box.url())
        [first] = await store(webhooks, event())
        [second] = await store(webhooks, event())
        await run_job(deliverer, webhooks, first["id"])
        await run_job(deliverer, webhooks, first["id"])
        await run_job(deliverer, webhooks, second["id"])
    base = f"/endpoints/{created['id']}"
    attempts = (await webhooks.client.get(f"{base}/attempts", headers=FR_MANAGER)).json()
    assert [(a["message_id"], a["status_code"]) for a in attempts["items"]] == [
        (second["id"], 200),
        (first["id"], 200),
        (first["id"], 500),
    ]
    assert all(len(a["response_excerpt"]) == 1024 for a in attempts["items"])
    assert all(a["latency_ms"] >= 0 for a in attempts["items"])
    paged = (
        await webhooks.client.get(f"{base}/attempts", params={"limit": 2}, headers=FR_MANAGER)
    ).json()
    rest = (
        await webhooks.client.get(
            f"{base}/attempts",
            params={"limit": 2, "cursor": paged["next_cursor"]},
            headers=FR_MANAGER,
        )
    ).json()
    assert [a["id"] for a in paged["items"] + rest["items"]] == [a["id"] for a in attempts["items"]]
    of_first = (
        await webhooks.client.get(f"/messages/{first['id']}/attempts", headers=FR_MANAGER)
    ).json()
    assert [(a["number"], a["status_code"]) for a in of_first["items"]] == [(2, 200), (1, 500)]
    message = (await webhooks.client.get(f"/messages/{first['id']}", headers=FR_MANAGER)).json()
    assert message["status"] == "succeeded"
    assert message["payload"]["id"] == first["payload"]["id"]
    messages = (await webhooks.client.get(f"{base}/messages", headers=FR_MANAGER)).json()
    assert [m["id"] for m in messages["items"]] == [second["id"], first["id"]]
    # Another district's manager sees none of it.
    for path in (f"{base}/attempts", f"{base}/messages", f"/messages/{first['id']}"):
        assert (await webhooks.client.get(path, headers=DE_MANAGER)).status_code == 404
    assert (
        await webhooks.client.post(f"/messages/{first['id']}/replay", headers=DE_MANAGER)
    ).status_code == 404


async def test_a_message_is_replayed_with_the_same_webhook_id(
    webhooks: RunningService, deliverer: Deliverer
) -> None:
    async with receiver() as box:
        created = await create_endpoint(webhooks, box.url())
        [message] = await store(webhooks, event())
        await run_job(deliverer, webhooks, message["id"])
        replayed = await webhooks.client.post(
            f"/messages/{message['id']}/replay", headers=FR_MANAGER
        )
        assert replayed.status_code == 200, replayed.text
        assert replayed.json()["status"] == "pending"
        assert replayed.json()["attempts"] == 0
        await run_job(deliverer, webhooks, message["id"])
        assert len(box.received) == 2
        first, again = box.received
        assert first.headers["webhook-id"] == again.headers["webhook-id"]
        Webhook(created["secret"]).verify(again.body, again.headers)
    audit = (
        await webhooks.client.get(f"/endpoints/{created['id']}/audit", headers=FR_MANAGER)
    ).json()
    assert audit["items"][0]["action"] == "replayed"
    assert audit["items"][0]["details"] == {"message_id": message["id"]}


async def test_failed_messages_of_an_endpoint_are_replayed_since_a_time(
    webhooks: RunningService, deliverer: Deliverer
) -> None:
    async with receiver(status(410)) as box:
        created = await create_endpoint(webhooks, box.url())
        [old] = await store(webhooks, event())
        await execute(
            webhooks,
            "UPDATE messages SET created_at = now() - interval '2 days' WHERE id = :id",
            id=old["id"],
        )
        recent = [(await store(webhooks, event()))[0] for _ in range(2)]
        [delivered] = await store(webhooks, event())
        await execute(
            webhooks, "UPDATE messages SET status = 'succeeded' WHERE id = :id", id=delivered["id"]
        )
        await run_job(deliverer, webhooks, recent[0]["id"])  # 410: the endpoint is disabled
    base = f"/endpoints/{created['id']}"
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    refused = await webhooks.client.post(
        f"{base}/replay", json={"since": since}, headers=FR_MANAGER
    )
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("/endpoint-disabled")
    await webhooks.client.patch(base, json={"enabled": True}, headers=FR_MANAGER)
    replayed = await webhooks.client.post(
        f"{base}/replay", json={"since": since}, headers=FR_MANAGER
    )
    assert replayed.json() == {"replayed": 2}
    for message in recent:
        row = await webhooks.scalar(
            "SELECT json_build_array(status, job_token) FROM messages WHERE id = :id",
            id=message["id"],
        )
        assert row[0] == "pending"
        assert (await jobs_of(webhooks, message["id"]))[-1]["token"] == row[1]
    assert (
        await webhooks.scalar("SELECT status FROM messages WHERE id = :id", id=old["id"])
        == "failed"
    )
    failed = (
        await webhooks.client.get(
            f"{base}/messages", params={"status": "failed"}, headers=FR_MANAGER
        )
    ).json()
    assert [m["id"] for m in failed["items"]] == [old["id"]]


async def test_attempts_older_than_the_retention_are_pruned(
    webhooks: RunningService, deliverer: Deliverer
) -> None:
    async with receiver() as box:
        await create_endpoint(webhooks, box.url())
        [message] = await store(webhooks, event())
        await run_job(deliverer, webhooks, message["id"])
    settings = webhooks.app.state.settings
    async with webhooks.sessions.begin() as session:
        assert await prune_attempts(session, settings, datetime.now(UTC) + timedelta(days=29)) == 0
    async with webhooks.sessions.begin() as session:
        assert await prune_attempts(session, settings, datetime.now(UTC) + timedelta(days=31)) == 1
    assert await webhooks.scalar("SELECT count(*) FROM attempts") == 0
