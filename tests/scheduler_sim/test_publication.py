"""Publication and what the simulator reports: messages sent at their time (or at once in fast
mode), failures on the marker, signed callbacks with retries, analytics that grow, shadow
posts."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from standardwebhooks.webhooks import Webhook

from tests.scheduler_sim.conftest import (
    Received,
    Receiver,
    Sim,
    StartSim,
    envelope,
    scheduled,
)


def verified(sim: Sim, request: Received) -> dict[str, Any]:
    """The callback's body, once the receiving side verified its signature."""
    webhook = Webhook(sim.settings.callback_secret.get_secret_value())
    body: dict[str, Any] = webhook.verify(request.body, request.headers)
    return body


def test_fast_mode_publishes_at_once_and_calls_back_signed(
    start_sim: StartSim, receiver: Receiver
) -> None:
    sim = start_sim(fast_mode=True)
    post_id, facebook, linkedin = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    data = scheduled(post_id, accounts={facebook: "facebook", linkedin: "linkedin"})

    delivered = sim.deliver(envelope(post_id, data))
    callbacks = receiver.wait_for(2, "message.sent")

    bodies = {b["data"]["socialProfileId"]: b for b in (verified(sim, c) for c in callbacks)}
    assert set(bodies) == {str(facebook), str(linkedin)}
    body = bodies[str(facebook)]
    assert body["type"] == "message.sent"
    assert datetime.fromisoformat(body["timestamp"]).tzinfo is not None
    sent = body["data"]
    message = sim.message(sent["message"]["id"])
    assert message["id"] in delivered.json()["messageIds"]
    assert message["state"] == "SENT"
    assert sent["message"] == message
    assert sent["postId"] == str(post_id)
    assert sent["platformPostId"] == message["platformPostId"]
    assert sent["platformPostId"]
    assert sent["postUrl"] == message["postUrl"]
    assert sent["postUrl"].startswith("https://facebook.")
    assert datetime.fromisoformat(sent["sentAt"]) == datetime.fromisoformat(message["sentAt"])
    # Each callback has its own id; the receiver de-duplicates on it.
    assert len({c.headers["webhook-id"] for c in callbacks}) == 2


def test_a_message_is_sent_at_its_time_not_before(start_sim: StartSim, receiver: Receiver) -> None:
    sim = start_sim()
    post_id = uuid.uuid4()
    publish_at = datetime.now(UTC) + timedelta(seconds=1.5)
    data = scheduled(post_id, accounts={uuid.uuid4(): "x"}, publish_at=publish_at)

    [message_id] = sim.deliver(envelope(post_id, data)).json()["messageIds"]

    assert sim.message(message_id)["state"] == "SCHEDULED"
    sent = sim.wait_for_state(message_id, "SENT")
    assert datetime.fromisoformat(sent["sentAt"]) >= publish_at
    [callback] = receiver.wait_for(1, "message.sent")
    assert verified(sim, callback)["data"]["message"]["id"] == message_id


def test_the_failure_marker_fails_the_message_and_calls_back_failed(
    start_sim: StartSim, receiver: Receiver
) -> None:
    sim = start_sim(fast_mode=True, failure_marker="#fail")
    post_id, account = uuid.uuid4(), uuid.uuid4()
    data = scheduled(post_id, accounts={account: "x"}, text="Closed today #FAIL")

    [message_id] = sim.deliver(envelope(post_id, data)).json()["messageIds"]
    [callback] = receiver.wait_for(1)

    body = verified(sim, callback)
    assert body["type"] == "message.failed"
    failed = body["data"]
    assert failed["postId"] == str(post_id)
    assert failed["socialProfileId"] == str(account)
    assert "#fail" in failed["error"]
    assert datetime.fromisoformat(failed["failedAt"]).tzinfo is not None
    message = sim.message(message_id)
    assert message["state"] == "FAILED"
    assert message["error"]["code"] == "SIMULATED_FAILURE"
    assert message["platformPostId"] is None
    assert failed["message"] == message


def test_a_failing_callback_url_is_retried_with_the_same_webhook_id(
    start_sim: StartSim, receiver: Receiver
) -> None:
    receiver.failures = 2
    sim = start_sim(fast_mode=True, callback_attempts=4, callback_backoff_seconds=0.05)
    post_id = uuid.uuid4()

    sim.deliver(envelope(post_id, scheduled(post_id, accounts={uuid.uuid4(): "x"})))
    attempts = receiver.wait_for(3)

    assert len({a.headers["webhook-id"] for a in attempts}) == 1
    assert all(verified(sim, a)["type"] == "message.sent" for a in attempts)
    time.sleep(0.5)  # the third attempt succeeded: no fourth
    assert len(receiver.requests) == 3


def test_callbacks_are_given_up_after_the_last_attempt(
    start_sim: StartSim, receiver: Receiver
) -> None:
    receiver.failures = 100
    sim = start_sim(fast_mode=True, callback_attempts=3, callback_backoff_seconds=0.01)
    post_id = uuid.uuid4()

    sim.deliver(envelope(post_id, scheduled(post_id, accounts={uuid.uuid4(): "x"})))
    receiver.wait_for(3)

    time.sleep(0.5)
    assert len(receiver.requests) == 3


def analytics(sim: Sim, message_id: str) -> dict[str, Any]:
    response = sim.client.get(f"/v1/messages/{message_id}/analytics")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def test_analytics_of_a_sent_message_grow_over_time(
    start_sim: StartSim, receiver: Receiver
) -> None:
    sim = start_sim(fast_mode=True, analytics_time_constant_seconds=30)
    post_id, account = uuid.uuid4(), uuid.uuid4()
    data = scheduled(post_id, accounts={account: "x"})
    [message_id] = sim.deliver(envelope(post_id, data)).json()["messageIds"]
    message = sim.wait_for_state(message_id, "SENT")

    first = analytics(sim, message_id)
    time.sleep(0.5)
    later = analytics(sim, message_id)

    assert first["messageId"] == message_id
    assert first["postId"] == str(post_id)
    assert first["socialProfileId"] == str(account)
    assert first["platformPostId"] == message["platformPostId"]
    assert set(first["metrics"]) == {
        "impressions",
        "reach",
        "reactions",
        "comments",
        "shares",
        "clicks",
        "video_views",
        "saves",
    }
    assert later["metrics"]["impressions"] > first["metrics"]["impressions"] > 0
    assert later["metrics"]["reach"] > first["metrics"]["reach"]
    assert all(later["metrics"][k] >= v for k, v in first["metrics"].items())
    assert later["collectedAt"] > first["collectedAt"]


def test_analytics_exist_only_for_sent_messages(start_sim: StartSim) -> None:
    sim = start_sim()
    post_id = uuid.uuid4()
    [message_id] = sim.deliver(
        envelope(post_id, scheduled(post_id, accounts={uuid.uuid4(): "x"}))
    ).json()["messageIds"]

    unsent = sim.client.get(f"/v1/messages/{message_id}/analytics")
    unknown = sim.client.get("/v1/messages/999/analytics")

    assert unsent.status_code == 409
    assert unknown.status_code == 404


def test_analytics_are_pushed_periodically(start_sim: StartSim, receiver: Receiver) -> None:
    sim = start_sim(
        fast_mode=True, analytics_push_interval_seconds=0.2, analytics_time_constant_seconds=30
    )
    post_id, account = uuid.uuid4(), uuid.uuid4()
    [message_id] = sim.deliver(
        envelope(post_id, scheduled(post_id, accounts={account: "x"}))
    ).json()["messageIds"]

    pushes = [verified(sim, r) for r in receiver.wait_for(2, "analytics.updated")]

    # Callbacks run concurrently: order the pushes by when they were collected.
    first, second = sorted((p["data"] for p in pushes), key=lambda d: d["collectedAt"])
    assert first["messageId"] == second["messageId"] == message_id
    assert first["postId"] == str(post_id)
    assert first["socialProfileId"] == str(account)
    assert second["metrics"]["impressions"] > first["metrics"]["impressions"]


def test_a_shadow_post_is_called_back_as_sent_with_no_chorus_post(
    start_sim: StartSim, receiver: Receiver
) -> None:
    sim = start_sim()
    account = uuid.uuid4()

    response = sim.client.post(
        "/v1/shadow-posts",
        json={
            "socialProfileId": str(account),
            "socialProfileType": "instagram",
            "text": "Posted from the phone app",
            "mediaUrls": ["https://cdn.example/p.jpg"],
        },
    )

    assert response.status_code == 201, response.text
    message = response.json()["data"]
    assert message["state"] == "SENT"
    assert message["externalReference"] is None
    assert message["socialProfile"] == {"id": str(account), "type": "instagram"}
    assert message["mediaUrls"] == [{"url": "https://cdn.example/p.jpg", "altText": None}]
    [callback] = receiver.wait_for(1, "message.sent")
    sent = verified(sim, callback)["data"]
    assert sent["postId"] is None
    assert sent["socialProfileId"] == str(account)
    assert sent["platformPostId"] == message["platformPostId"]
    assert sent["postUrl"] == message["postUrl"]
    assert sent["message"] == sim.message(message["id"])


def test_a_shadow_post_without_a_profile_is_refused(start_sim: StartSim) -> None:
    sim = start_sim()

    response = sim.client.post("/v1/shadow-posts", json={"text": "no profile"})

    assert response.status_code == 422
    assert sim.messages() == []
