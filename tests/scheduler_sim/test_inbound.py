"""Chorus's deliveries to the simulator: verified, de-duplicated, turned into messages,
replaced and cancelled."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from standardwebhooks.webhooks import Webhook

from chassis.events import EventData
from services.calendar.events import PostUnscheduled, PostWithdrawn
from services.calendar.vocabulary import PostStatus
from tests.scheduler_sim.conftest import (
    Receiver,
    StartSim,
    cancelled,
    envelope,
    new_secret,
    scheduled,
)
from tools.scheduler_sim.settings import SchedulerSimSettings


def test_a_signed_post_scheduled_becomes_one_scheduled_message_per_target(
    start_sim: StartSim, receiver: Receiver
) -> None:
    sim = start_sim()
    post_id, facebook, instagram = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    data = scheduled(post_id, accounts={facebook: "facebook", instagram: "instagram"})
    body = envelope(post_id, data)

    response = sim.deliver(body)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "scheduled"
    messages = sim.messages(postId=str(post_id))
    assert sorted(m["id"] for m in messages) == sorted(response.json()["messageIds"])
    by_profile = {m["socialProfile"]["id"]: m for m in messages}
    assert set(by_profile) == {str(facebook), str(instagram)}
    message = by_profile[str(facebook)]
    assert message["state"] == "SCHEDULED"
    assert message["socialProfile"] == {"id": str(facebook), "type": "facebook"}
    assert datetime.fromisoformat(message["scheduledSendTime"]) == data.publish_at
    assert message["text"] == "Spring opening hours on facebook\nhttps://library.example/hours"
    assert message["mediaUrls"] == [
        {"url": data.targets[0].media[0].url, "altText": "Our front door"}
    ]
    assert message["externalReference"] == {
        "postId": str(post_id),
        "postVersion": 1,
        "approvedHash": "a" * 64,
        "eventId": json.loads(body)["id"],
    }
    assert message["sentAt"] is None
    assert sim.message(message["id"]) == message
    # Not its time yet: nothing is published, nobody is called back.
    assert receiver.requests == []


def test_during_a_rotation_either_signature_passes(start_sim: StartSim) -> None:
    sim = start_sim()
    post_id = uuid.uuid4()
    body = envelope(post_id, scheduled(post_id, accounts={uuid.uuid4(): "x"}))
    current = sim.settings.inbound_secret.get_secret_value()

    response = sim.deliver(body, secrets_used=(new_secret(), current))

    assert response.status_code == 200, response.text
    assert len(sim.messages(postId=str(post_id))) == 1


def test_a_bad_signature_is_refused_and_changes_nothing(start_sim: StartSim) -> None:
    sim = start_sim()
    post_id = uuid.uuid4()
    body = envelope(post_id, scheduled(post_id, accounts={uuid.uuid4(): "x"}))

    response = sim.deliver(body, secrets_used=(new_secret(),))

    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "INVALID_SIGNATURE"
    assert sim.messages() == []


def test_a_tampered_body_is_refused(start_sim: StartSim) -> None:
    sim = start_sim()
    post_id = uuid.uuid4()
    body = envelope(post_id, scheduled(post_id, accounts={uuid.uuid4(): "x"}))
    secret = sim.settings.inbound_secret.get_secret_value()
    now = datetime.now(UTC)
    headers = {
        "webhook-id": "evt-1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign("evt-1", now, body.decode()),
    }
    tampered = body.replace(b"Spring", b"Autumn")

    response = sim.client.post("/webhooks/chorus", content=tampered, headers=headers)

    assert response.status_code == 401
    assert sim.messages() == []


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"webhook-id": "evt-1", "webhook-timestamp": "1", "webhook-signature": "garbage"},
        {"webhook-id": "evt-1", "webhook-timestamp": "soon", "webhook-signature": "v1,AAAA"},
    ],
    ids=["unsigned", "malformed-signature", "malformed-timestamp"],
)
def test_an_unsigned_or_malformed_signature_is_401(
    start_sim: StartSim, headers: dict[str, str]
) -> None:
    sim = start_sim()
    post_id = uuid.uuid4()
    body = envelope(post_id, scheduled(post_id, accounts={uuid.uuid4(): "x"}))

    response = sim.client.post("/webhooks/chorus", content=body, headers=headers)

    assert response.status_code == 401
    assert sim.messages() == []


def test_a_stale_timestamp_is_refused(start_sim: StartSim) -> None:
    sim = start_sim()
    post_id = uuid.uuid4()
    body = envelope(post_id, scheduled(post_id, accounts={uuid.uuid4(): "x"}))

    stale = sim.deliver(body, sent_at=datetime.now(UTC) - timedelta(minutes=6))
    fresh = sim.deliver(body, sent_at=datetime.now(UTC) - timedelta(minutes=4))

    assert stale.status_code == 401
    assert "too old" in stale.json()["errors"][0]["message"]
    assert fresh.status_code == 200


def test_a_duplicate_webhook_id_has_no_second_effect(start_sim: StartSim) -> None:
    sim = start_sim()
    post_id = uuid.uuid4()
    body = envelope(post_id, scheduled(post_id, accounts={uuid.uuid4(): "x", uuid.uuid4(): "y"}))

    first = sim.deliver(body, webhook_id="evt-dup")
    again = sim.deliver(body, webhook_id="evt-dup")

    assert first.status_code == 200
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate"}
    messages = sim.messages(postId=str(post_id))
    assert sorted(m["id"] for m in messages) == sorted(first.json()["messageIds"])


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"type": "chorus.calendar.post.scheduled"}', b"[]"],
    ids=["not-json", "not-a-cloudevent", "array"],
)
def test_a_signed_body_that_is_not_a_cloudevent_is_400(start_sim: StartSim, body: bytes) -> None:
    sim = start_sim()

    response = sim.deliver(body, webhook_id="evt-bad")

    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "MALFORMED"
    # A refused delivery is not remembered: fixed, the same id is applied.
    post_id = uuid.uuid4()
    good = envelope(post_id, scheduled(post_id, accounts={uuid.uuid4(): "x"}))
    assert sim.deliver(good, webhook_id="evt-bad").json()["status"] == "scheduled"


def test_a_post_scheduled_whose_data_does_not_fit_is_400(start_sim: StartSim) -> None:
    sim = start_sim()
    post_id = uuid.uuid4()
    event = json.loads(envelope(post_id, scheduled(post_id, accounts={uuid.uuid4(): "x"})))
    del event["data"]["targets"][0]["account_id"]

    response = sim.deliver(json.dumps(event).encode())

    assert response.status_code == 400
    assert "account_id" in response.json()["errors"][0]["message"]
    assert sim.messages() == []


def test_other_event_types_are_acknowledged_and_ignored(start_sim: StartSim) -> None:
    sim = start_sim()
    event = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/services/approvals",
        "type": "chorus.approvals.approval.escalated",
        "subject": str(uuid.uuid4()),
        "time": datetime.now(UTC).isoformat(),
        "data": {"anything": 1},
    }

    response = sim.deliver(json.dumps(event).encode())

    assert response.status_code == 200
    assert response.json() == {"status": "ignored"}


def withdrawn(post_id: uuid.UUID) -> PostWithdrawn:
    return PostWithdrawn(
        id=post_id,
        district_id="d1",
        calendar_id=uuid.uuid4(),
        status=PostStatus.DRAFT,
        version=2,
        content_hash="d" * 64,
        previous_status=PostStatus.SCHEDULED,
        reason="Edited after approval",
    )


def unscheduled(post_id: uuid.UUID) -> PostUnscheduled:
    now = datetime.now(UTC)
    return PostUnscheduled.model_validate(
        {
            "id": post_id,
            "district_id": "d1",
            "calendar_id": uuid.uuid4(),
            "status": PostStatus.APPROVED,
            "version": 1,
            "content_hash": "c" * 64,
            "previous_status": PostStatus.SCHEDULED,
            "reason": "A blackout",
            "district_path": "d1",
            "title": "Opening hours",
            "author": "u1",
            "assignee": None,
            "publish_at": now + timedelta(hours=1),
            "approved_hash": "a" * 64,
            "reasons": ["A blackout"],
            "hold": "blackout",
            "blackout": {
                "id": uuid.uuid4(),
                "district_id": None,
                "starts_at": now,
                "ends_at": now + timedelta(days=1),
                "reason": "Mourning",
            },
        }
    )


@pytest.mark.parametrize("take_back", [cancelled, withdrawn, unscheduled])
def test_a_post_taken_back_cancels_its_messages(
    start_sim: StartSim, take_back: Callable[[uuid.UUID], EventData]
) -> None:
    sim = start_sim()
    post_id, other_post = uuid.uuid4(), uuid.uuid4()
    sim.deliver(envelope(post_id, scheduled(post_id, accounts={uuid.uuid4(): "x"})))
    sim.deliver(envelope(other_post, scheduled(other_post, accounts={uuid.uuid4(): "x"})))

    response = sim.deliver(envelope(post_id, take_back(post_id)))

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert [m["state"] for m in sim.messages(postId=str(post_id))] == ["CANCELLED"]
    assert [m["state"] for m in sim.messages(postId=str(other_post))] == ["SCHEDULED"]
    assert [m["id"] for m in sim.messages(state="CANCELLED")] == response.json()["messageIds"]


def test_a_newer_post_scheduled_replaces_the_posts_messages(start_sim: StartSim) -> None:
    sim = start_sim()
    post_id, account = uuid.uuid4(), uuid.uuid4()
    first = sim.deliver(envelope(post_id, scheduled(post_id, accounts={account: "x"})))
    edited = scheduled(post_id, accounts={account: "x"}, text="Summer hours", version=2)

    second = sim.deliver(envelope(post_id, edited))

    [old_id], [new_id] = first.json()["messageIds"], second.json()["messageIds"]
    assert sim.message(old_id)["state"] == "CANCELLED"
    replacement = sim.message(new_id)
    assert replacement["state"] == "SCHEDULED"
    assert replacement["text"].startswith("Summer hours on x")
    assert replacement["externalReference"]["postVersion"] == 2


def test_a_late_older_event_changes_nothing(start_sim: StartSim) -> None:
    """A retried delivery arriving after a newer one (version 2 scheduled, then the version 1
    cancellation) neither cancels nor brings back anything."""
    sim = start_sim()
    post_id, account = uuid.uuid4(), uuid.uuid4()
    newer = sim.deliver(envelope(post_id, scheduled(post_id, accounts={account: "x"}, version=2)))
    older_schedule = scheduled(post_id, accounts={account: "x"}, text="Old", version=1)

    late_cancel = sim.deliver(envelope(post_id, cancelled(post_id, version=1)))
    late_schedule = sim.deliver(envelope(post_id, older_schedule))

    assert late_cancel.json()["messageIds"] == []
    assert late_schedule.json()["messageIds"] == []
    [message] = sim.messages(postId=str(post_id))
    assert message["id"] == newer.json()["messageIds"][0]
    assert message["state"] == "SCHEDULED"


def test_the_same_version_scheduled_again_after_a_hold_is_applied(start_sim: StartSim) -> None:
    """A hold (post.unscheduled) does not change the post's version; scheduling it again
    once the hold is gone comes later in time and creates new messages."""
    sim = start_sim()
    post_id, account = uuid.uuid4(), uuid.uuid4()
    sim.deliver(envelope(post_id, scheduled(post_id, accounts={account: "x"})))
    sim.deliver(envelope(post_id, unscheduled(post_id)))

    again = sim.deliver(envelope(post_id, scheduled(post_id, accounts={account: "x"})))

    [new_id] = again.json()["messageIds"]
    assert sim.message(new_id)["state"] == "SCHEDULED"
    assert sorted(m["state"] for m in sim.messages(postId=str(post_id))) == [
        "CANCELLED",
        "SCHEDULED",
    ]


def test_an_unknown_message_is_404(start_sim: StartSim) -> None:
    sim = start_sim()

    response = sim.client.get("/v1/messages/12345")

    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "NOT_FOUND"


def test_messages_are_listed_by_state_and_social_profile(start_sim: StartSim) -> None:
    sim = start_sim()
    post_id, other_post, shared, alone = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    sim.deliver(envelope(post_id, scheduled(post_id, accounts={shared: "x", alone: "y"})))
    sim.deliver(envelope(other_post, scheduled(other_post, accounts={shared: "x"})))
    sim.deliver(envelope(other_post, cancelled(other_post)))

    of_shared = sim.messages(socialProfileIds=[str(shared)])
    scheduled_of_shared = sim.messages(socialProfileIds=[str(shared)], state="SCHEDULED")
    of_both = sim.messages(socialProfileIds=[str(shared), str(alone)])

    assert len(of_shared) == 2
    assert [m["externalReference"]["postId"] for m in scheduled_of_shared] == [str(post_id)]
    assert len(of_both) == 3


def test_a_secret_the_package_cannot_use_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="Standard Webhooks secret"):
        SchedulerSimSettings(inbound_secret="whsec_", callback_secret=new_secret())
