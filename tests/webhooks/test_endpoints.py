"""Endpoints (subscriptions): created with a secret shown once, managed by the managers of
their subtree, checked by the address guard when saved, rotated, audited, paged."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from services.webhooks.address_guard import AllowList
from tests.kit import RunningService
from tests.webhooks.factories import (
    CENTRAL,
    DE_MANAGER,
    FR_MANAGER,
    FR_WRITER,
    PARIS_MANAGER,
    FakeResolver,
    create_endpoint,
)

pytestmark = pytest.mark.asyncio

HOOK = "https://hooks.example.com/chorus"


@pytest.fixture(autouse=True)
def public_names(webhooks: RunningService) -> FakeResolver:
    """No real DNS: example names resolve to public addresses, `internal` to a private one."""
    resolver = FakeResolver(
        {
            "hooks.example.com": ["93.184.215.14"],
            "internal.example.com": ["93.184.215.15", "10.1.2.3"],
            "localhost.test": ["127.0.0.1"],
        }
    )
    webhooks.app.state.webhooks.guard.resolver = resolver
    return resolver


async def test_an_endpoint_is_created_with_a_standard_webhooks_secret_shown_once(
    webhooks: RunningService,
) -> None:
    created = await create_endpoint(
        webhooks,
        HOOK,
        event_types=["chorus.calendar.post.*", "chorus.approvals.approval.escalated"],
        description="Scheduler",
    )
    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert 24 <= len(base64.b64decode(secret.removeprefix("whsec_"))) <= 32
    assert created["district_id"] == "fr"
    assert created["enabled"] is True
    read = await webhooks.client.get(f"/endpoints/{created['id']}", headers=FR_MANAGER)
    assert read.status_code == 200
    assert "secret" not in read.json()
    assert read.json()["event_types"] == [
        "chorus.calendar.post.*",
        "chorus.approvals.approval.escalated",
    ]
    # Sealed at rest: the database holds no trace of the secret.
    stored = await webhooks.scalar("SELECT secret FROM endpoints WHERE id = :id", id=created["id"])
    assert secret.encode() not in stored
    assert base64.b64decode(secret.removeprefix("whsec_")) not in stored


@pytest.mark.parametrize(
    "pattern", ["chorus.calendar", "calendar.*", "chorus.Calendar.*", "chorus.*.post", "**"]
)
async def test_event_type_filters_are_types_prefixes_or_everything(
    webhooks: RunningService, pattern: str
) -> None:
    response = await webhooks.client.post(
        "/endpoints",
        json={"url": HOOK, "event_types": [pattern], "district_id": "fr"},
        headers=FR_MANAGER,
    )
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://hooks.example.com/x", "https"),
        ("https://10.0.0.1/x", "private"),
        ("https://169.254.169.254/latest/meta-data", "metadata"),
        ("https://[::ffff:127.0.0.1]/x", "loopback"),
        ("https://[64:ff9b::a00:1]/x", "private"),
        ("https://[2002:a00:1::]/x", "private"),
        ("https://internal.example.com/x", "private"),
        ("https://nowhere.example.com/x", "does not resolve"),
        ("ftp://hooks.example.com/x", "http(s)"),
    ],
)
async def test_urls_reaching_the_internal_network_are_refused_when_saved(
    webhooks: RunningService, url: str, why: str
) -> None:
    response = await webhooks.client.post(
        "/endpoints",
        json={"url": url, "event_types": ["*"], "district_id": "fr"},
        headers=FR_MANAGER,
    )
    assert response.status_code == 422, response.text
    assert response.json()["type"].endswith("/url-refused")
    assert why in response.json()["detail"]
    assert await webhooks.scalar("SELECT count(*) FROM endpoints") == 0


async def test_loopback_is_refused_unless_allow_listed(webhooks: RunningService) -> None:
    webhooks.app.state.webhooks.guard.allow = AllowList()
    for url in ("https://127.0.0.1/x", "http://127.0.0.1:9/x", "https://localhost.test/x"):
        response = await webhooks.client.post(
            "/endpoints",
            json={"url": url, "event_types": ["*"], "district_id": "fr"},
            headers=FR_MANAGER,
        )
        assert response.status_code == 422, url
    webhooks.app.state.webhooks.guard.allow = AllowList.parse(["localhost.test"])
    await create_endpoint(webhooks, "http://localhost.test/x")


async def test_an_allow_listed_local_receiver_may_use_http(webhooks: RunningService) -> None:
    created = await create_endpoint(webhooks, "http://127.0.0.1:9/hook")
    assert created["url"] == "http://127.0.0.1:9/hook"


async def test_a_changed_url_is_checked_again(webhooks: RunningService) -> None:
    created = await create_endpoint(webhooks, HOOK)
    response = await webhooks.client.patch(
        f"/endpoints/{created['id']}",
        json={"url": "https://internal.example.com/x"},
        headers=FR_MANAGER,
    )
    assert response.status_code == 422
    assert response.json()["type"].endswith("/url-refused")


async def test_managers_manage_the_endpoints_of_their_subtree_only(
    webhooks: RunningService,
) -> None:
    fr = await create_endpoint(webhooks, HOOK)
    paris = await create_endpoint(webhooks, HOOK, district_id="fr-paris", headers=PARIS_MANAGER)
    # Above: the French manager manages Paris's endpoint.
    assert (
        await webhooks.client.get(f"/endpoints/{paris['id']}", headers=FR_MANAGER)
    ).status_code == 200
    # Another district's endpoint, or one above: 404, whatever the verb.
    for headers in (DE_MANAGER, PARIS_MANAGER, FR_WRITER):
        assert (
            await webhooks.client.get(f"/endpoints/{fr['id']}", headers=headers)
        ).status_code == 404
        assert (
            await webhooks.client.patch(
                f"/endpoints/{fr['id']}", json={"enabled": False}, headers=headers
            )
        ).status_code == 404
        assert (
            await webhooks.client.post(f"/endpoints/{fr['id']}/secret/rotate", headers=headers)
        ).status_code == 404
        assert (
            await webhooks.client.delete(f"/endpoints/{fr['id']}", headers=headers)
        ).status_code == 404
    listed = await webhooks.client.get("/endpoints", headers=PARIS_MANAGER)
    assert [e["id"] for e in listed.json()["items"]] == [paris["id"]]
    listed = await webhooks.client.get("/endpoints", headers=DE_MANAGER)
    assert listed.json()["items"] == []
    # A contributor manages nothing; a manager creates nothing in another district.
    refused = await webhooks.client.post(
        "/endpoints",
        json={"url": HOOK, "event_types": ["*"], "district_id": "fr"},
        headers=FR_WRITER,
    )
    assert refused.status_code == 403
    refused = await webhooks.client.post(
        "/endpoints",
        json={"url": HOOK, "event_types": ["*"], "district_id": "fr"},
        headers=DE_MANAGER,
    )
    # A district the caller cannot see at all is not found.
    assert refused.status_code == 404


async def test_an_endpoint_without_a_district_is_the_central_teams(
    webhooks: RunningService,
) -> None:
    refused = await webhooks.client.post(
        "/endpoints", json={"url": HOOK, "event_types": ["*"]}, headers=FR_MANAGER
    )
    assert refused.status_code == 403
    everything = await create_endpoint(webhooks, HOOK, district_id=None, headers=CENTRAL)
    assert (
        await webhooks.client.get(f"/endpoints/{everything['id']}", headers=FR_MANAGER)
    ).status_code == 404
    listed = await webhooks.client.get("/endpoints", headers=CENTRAL)
    assert [e["id"] for e in listed.json()["items"]] == [everything["id"]]


async def test_rotation_gives_a_new_secret_and_keeps_the_old_one_for_the_overlap(
    webhooks: RunningService,
) -> None:
    created = await create_endpoint(webhooks, HOOK)
    before = datetime.now(UTC)
    rotated = await webhooks.client.post(
        f"/endpoints/{created['id']}/secret/rotate", headers=FR_MANAGER
    )
    assert rotated.status_code == 200
    body = rotated.json()
    assert body["secret"].startswith("whsec_")
    assert body["secret"] != created["secret"]
    ends = datetime.fromisoformat(body["previous_secret_expires_at"])
    assert before + timedelta(hours=23, minutes=59) < ends < datetime.now(UTC) + timedelta(hours=24)


async def test_every_change_is_audited_newest_first(webhooks: RunningService) -> None:
    created = await create_endpoint(webhooks, HOOK)
    endpoint = f"/endpoints/{created['id']}"
    await webhooks.client.patch(
        endpoint, json={"event_types": ["chorus.calendar.post.*"]}, headers=FR_MANAGER
    )
    await webhooks.client.patch(endpoint, json={"enabled": False}, headers=FR_MANAGER)
    await webhooks.client.post(f"{endpoint}/secret/rotate", headers=FR_MANAGER)
    await webhooks.client.delete(endpoint, headers=FR_MANAGER)
    # Deleted, it is gone from the API, audit included.
    assert (await webhooks.client.get(endpoint, headers=FR_MANAGER)).status_code == 404
    rows = await webhooks.scalar(
        "SELECT json_agg(json_build_array(action, actor, details) ORDER BY id)"
        " FROM endpoint_audit WHERE endpoint_id = :id",
        id=created["id"],
    )
    assert [(action, actor) for action, actor, _ in rows] == [
        ("created", "francois"),
        ("updated", "francois"),
        ("disabled", "francois"),
        ("secret_rotated", "francois"),
        ("deleted", "francois"),
    ]
    assert rows[1][2] == {"event_types": [["*"], ["chorus.calendar.post.*"]]}
    assert "whsec_" not in str(rows)


async def test_the_audit_trail_is_listed_per_endpoint_in_pages(webhooks: RunningService) -> None:
    created = await create_endpoint(webhooks, HOOK)
    endpoint = f"/endpoints/{created['id']}"
    for n in range(3):
        await webhooks.client.patch(endpoint, json={"description": f"v{n}"}, headers=FR_MANAGER)
    first = (
        await webhooks.client.get(f"{endpoint}/audit", params={"limit": 3}, headers=FR_MANAGER)
    ).json()
    assert [e["details"].get("description", [None, None])[1] for e in first["items"]] == [
        "v2",
        "v1",
        "v0",
    ]
    second = (
        await webhooks.client.get(
            f"{endpoint}/audit",
            params={"limit": 3, "cursor": first["next_cursor"]},
            headers=FR_MANAGER,
        )
    ).json()
    assert [e["action"] for e in second["items"]] == ["created"]
    assert second["next_cursor"] is None
    assert (await webhooks.client.get(f"{endpoint}/audit", headers=DE_MANAGER)).status_code == 404


async def test_endpoints_are_listed_in_keyset_pages(webhooks: RunningService) -> None:
    made = [await create_endpoint(webhooks, HOOK) for _ in range(3)]
    first = (
        await webhooks.client.get("/endpoints", params={"limit": 2}, headers=FR_MANAGER)
    ).json()
    second = (
        await webhooks.client.get(
            "/endpoints", params={"limit": 2, "cursor": first["next_cursor"]}, headers=FR_MANAGER
        )
    ).json()
    assert [e["id"] for e in first["items"] + second["items"]] == [e["id"] for e in made]
    assert second["next_cursor"] is None
