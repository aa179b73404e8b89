"""Account requests: asking (rules, roles, conflicts), reading, cancelling, and the decisions of
approvals arriving as real events on the broker."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import pytest

from chassis.events import CloudEvent
from services.inventory.requests.handlers import on_granted, on_rejected
from tests.chassis.kit import eventually
from tests.conftest import Infrastructure
from tests.inventory.factories import HQ_ADMIN
from tests.kit import RunningService, as_user, consumer_of, send

pytestmark = pytest.mark.asyncio

FR_MANAGER = as_user("francois", fr="district_manager")
FR_CONTRIBUTOR = as_user("claire", fr="contributor")
FR_OTHER_CONTRIBUTOR = as_user("colin", fr="contributor")
FR_VIEWER = as_user("vera", fr="viewer")
DE_MANAGER = as_user("dieter", de="district_manager")

APPROVALS_TOPIC = "chorus.approvals.events"
GRANTED = "chorus.approvals.approval.granted"
REJECTED = "chorus.approvals.approval.rejected"


async def ask(
    service: RunningService, headers: dict[str, str] = FR_CONTRIBUTOR, **body: Any
) -> dict[str, Any]:
    payload = {"district_id": "fr", "purpose": "Local news for France", **body}
    response = await service.client.post("/account-requests", json=payload, headers=headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def decision(
    event_type: str, request_id: str, subject_kind: str = "account_request", **data: Any
) -> CloudEvent:
    return CloudEvent(
        source="/services/approvals",
        type=event_type,
        subject=str(uuid.uuid4()),  # the approval's id
        data={"subject_kind": subject_kind, "subject_id": request_id, **data},
    )


async def handle_directly(service: RunningService, event: CloudEvent) -> None:
    """Run a handler as the consumer does: inside one transaction."""
    handler = on_granted if event.type == GRANTED else on_rejected
    async with service.sessions() as session, session.begin():
        await handler(session, event)


async def get_request(service: RunningService, request_id: str) -> dict[str, Any]:
    response = await service.client.get(f"/account-requests/{request_id}", headers=HQ_ADMIN)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def accounts_by_handle(service: RunningService, q: str) -> list[dict[str, Any]]:
    response = await service.client.get("/accounts", params={"q": q}, headers=HQ_ADMIN)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


class TestAsking:
    async def test_a_contributor_asks_and_approvals_gets_the_snapshot_and_its_hash(
        self, inventory: RunningService
    ) -> None:
        request = await ask(
            inventory,
            platform="Instagram",
            handle="@Orange_Paris",
            district_id="fr-paris",
            display_name="Orange Paris",
            language="fr",
            country="FR",
        )
        assert request["status"] == "open"
        assert (request["platform"], request["handle"]) == ("instagram", "Orange_Paris")
        assert request["requested_by"] == "claire"
        assert request["account_id"] is None
        [event] = await inventory.events("chorus.inventory.account.requested")
        assert event["subject"] == request["id"]
        data = event["data"]
        assert data["request_id"] == request["id"]
        assert data["subject_kind"] == "account_request"
        assert data["district_id"] == "fr-paris"
        assert (data["platform"], data["handle"], data["purpose"]) == (
            "instagram",
            "Orange_Paris",
            "Local news for France",
        )
        assert data["requested_by"] == "claire"
        assert data["snapshot"]["profile_url"] == "https://www.instagram.com/Orange_Paris/"
        assert data["snapshot"]["display_name"] == "Orange Paris"
        canonical = json.dumps(data["snapshot"], sort_keys=True, separators=(",", ":"))
        assert data["content_hash"] == hashlib.sha256(canonical.encode()).hexdigest()
        trail = await inventory.scalar(
            "SELECT count(*) FROM audit_log WHERE entity_type = 'account_request'"
            " AND entity_id = :id AND action = 'requested' AND actor = 'claire'",
            id=request["id"],
        )
        assert trail == 1

    async def test_by_profile_url_and_by_a_manager(self, inventory: RunningService) -> None:
        request = await ask(inventory, FR_MANAGER, profile_url="https://twitter.com/OrangeFR")
        assert (request["platform"], request["handle"]) == ("x", "OrangeFR")
        regional = await ask(inventory, HQ_ADMIN, platform="tiktok", handle="orange_de")
        assert regional["requested_by"] == "regina"

    async def test_a_viewer_may_not_ask(self, inventory: RunningService) -> None:
        response = await inventory.client.post(
            "/account-requests",
            json={"district_id": "fr", "platform": "x", "handle": "orange", "purpose": "p"},
            headers=FR_VIEWER,
        )
        assert response.status_code == 403
        assert response.json()["type"].endswith("/forbidden")
        assert await inventory.events("chorus.inventory.account.requested") == []

    async def test_another_district_does_not_exist_for_the_caller(
        self, inventory: RunningService
    ) -> None:
        response = await inventory.client.post(
            "/account-requests",
            json={"district_id": "de", "platform": "x", "handle": "orange", "purpose": "p"},
            headers=FR_CONTRIBUTOR,
        )
        assert response.status_code == 404
        assert response.json()["type"].endswith("/district-not-found")

    @pytest.mark.parametrize(
        ("body", "problem"),
        [
            ({"platform": "x", "handle": "far_too_long_for_x_handles"}, "invalid-handle"),
            ({"platform": "myspace", "handle": "tom"}, "unknown-platform"),
            ({"profile_url": "https://example.com/someone"}, "invalid-profile-url"),
            (
                {"platform": "instagram", "profile_url": "https://x.com/orange"},
                "platform-mismatch",
            ),
            ({"platform": "x"}, "validation-error"),
            ({"platform": "x", "handle": "orange", "purpose": None}, "validation-error"),
            ({"platform": "x", "handle": "orange", "purpose": "   "}, "validation-error"),
            ({"platform": "x", "handle": "orange", "purpose": "p" * 2001}, "validation-error"),
            ({"platform": "x", "handle": "orange", "country": "France"}, "validation-error"),
            ({"platform": "x", "handle": "orange", "status": "official"}, "validation-error"),
        ],
    )
    async def test_bad_input_is_422(
        self, inventory: RunningService, body: dict[str, Any], problem: str
    ) -> None:
        response = await inventory.client.post(
            "/account-requests",
            json={"district_id": "fr", "purpose": "Local news", **body},
            headers=FR_CONTRIBUTOR,
        )
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("/" + problem)

    async def test_the_409_names_what_holds_the_handle_only_to_those_who_see_it(
        self, inventory: RunningService
    ) -> None:
        german = await inventory.client.post(
            "/accounts",
            json={"platform": "x", "handle": "OrangeDE", "district_id": "de"},
            headers=HQ_ADMIN,
        )
        assert german.status_code == 201
        german_request = await ask(
            inventory, DE_MANAGER, district_id="de", platform="instagram", handle="orange_de"
        )
        body = {"district_id": "fr", "purpose": "p"}
        for handle, problem, key in (
            ({"platform": "x", "handle": "orangede"}, "account-exists", "existing_account_id"),
            (
                {"platform": "instagram", "handle": "Orange_DE"},
                "account-request-exists",
                "existing_request_id",
            ),
        ):
            hidden = await inventory.client.post(
                "/account-requests", json={**body, **handle}, headers=FR_CONTRIBUTOR
            )
            assert hidden.status_code == 409, hidden.text
            assert hidden.headers["content-type"] == "application/problem+json"
            assert hidden.json()["type"].endswith("/" + problem)
            assert key not in hidden.json()
            assert "existing_district_id" not in hidden.json()
            assert german.json()["id"] not in hidden.text
            assert german_request["id"] not in hidden.text
            assert "do not see" in hidden.json()["detail"]
            shown = await inventory.client.post(
                "/account-requests",
                json={**body, "district_id": "de", **handle},
                headers=DE_MANAGER,
            )
            assert shown.status_code == 409, shown.text
            assert shown.json()["existing_district_id"] == "de"
            assert shown.json()[key] == (
                german.json()["id"] if key == "existing_account_id" else german_request["id"]
            )

    async def test_an_existing_account_or_open_request_is_409(
        self, inventory: RunningService
    ) -> None:
        registered = await inventory.client.post(
            "/accounts",
            json={"platform": "x", "handle": "OrangeFR", "district_id": "fr-paris"},
            headers=HQ_ADMIN,
        )
        assert registered.status_code == 201
        taken = await inventory.client.post(
            "/account-requests",
            json={"district_id": "fr", "platform": "x", "handle": "orangefr", "purpose": "p"},
            headers=FR_CONTRIBUTOR,
        )
        assert taken.status_code == 409
        assert taken.json()["type"].endswith("/account-exists")
        assert taken.json()["existing_account_id"] == registered.json()["id"]
        assert taken.json()["existing_district_id"] == "fr-paris"

        first = await ask(inventory, platform="instagram", handle="orange_fr")
        again = await inventory.client.post(
            "/account-requests",
            json={
                "district_id": "fr-paris",
                "profile_url": "https://instagram.com/Orange_FR",
                "purpose": "p",
            },
            headers=FR_MANAGER,
        )
        assert again.status_code == 409
        assert again.json()["type"].endswith("/account-request-exists")
        assert again.json()["existing_request_id"] == first["id"]
        # Once that request is closed, the handle may be asked for again.
        cancelled = await inventory.client.post(
            f"/account-requests/{first['id']}/cancel", headers=FR_CONTRIBUTOR
        )
        assert cancelled.status_code == 200
        await ask(inventory, FR_MANAGER, platform="instagram", handle="orange_fr")


class TestReading:
    async def test_list_is_scoped_filtered_and_paged(self, inventory: RunningService) -> None:
        paris = await ask(inventory, platform="x", handle="orange_paris", district_id="fr-paris")
        france = await ask(inventory, platform="x", handle="orange_fr")
        german = await ask(
            inventory, DE_MANAGER, platform="x", handle="orange_de", district_id="de"
        )
        await inventory.client.post(f"/account-requests/{france['id']}/cancel", headers=FR_MANAGER)

        async def ids(headers: dict[str, str], **params: Any) -> list[str]:
            response = await inventory.client.get(
                "/account-requests", params=params, headers=headers
            )
            assert response.status_code == 200, response.text
            return [r["id"] for r in response.json()["items"]]

        # Newest first.
        assert await ids(FR_VIEWER) == [france["id"], paris["id"]]
        assert await ids(DE_MANAGER) == [german["id"]]
        assert await ids(HQ_ADMIN) == [german["id"], france["id"], paris["id"]]
        assert await ids(HQ_ADMIN, status="open") == [german["id"], paris["id"]]
        assert await ids(HQ_ADMIN, status=["cancelled", "approved"]) == [france["id"]]
        assert await ids(HQ_ADMIN, district_id="fr-paris") == [paris["id"]]
        missing = await inventory.client.get(
            "/account-requests", params={"district_id": "de"}, headers=FR_VIEWER
        )
        assert missing.status_code == 404
        for params in ({"status": "lost"}, {"status": ["open"] * 5}, {"district_id": "FR!"}):
            invalid = await inventory.client.get(
                "/account-requests", params=params, headers=HQ_ADMIN
            )
            assert invalid.status_code == 422, params

        seen: list[str] = []
        cursor = None
        for _ in range(5):
            params: dict[str, Any] = {"limit": 1}
            if cursor:
                params["cursor"] = cursor
            page = (
                await inventory.client.get("/account-requests", params=params, headers=HQ_ADMIN)
            ).json()
            seen += [r["id"] for r in page["items"]]
            cursor = page.get("next_cursor")
            if not cursor:
                break
        assert seen == [german["id"], france["id"], paris["id"]]
        bad = await inventory.client.get(
            "/account-requests", params={"cursor": "WyJ4Il0"}, headers=HQ_ADMIN
        )
        assert bad.status_code == 400
        assert bad.json()["type"].endswith("/invalid-cursor")

    async def test_one_request_of_another_district_is_404(self, inventory: RunningService) -> None:
        german = await ask(
            inventory, DE_MANAGER, platform="x", handle="orange_de", district_id="de"
        )
        url = f"/account-requests/{german['id']}"
        assert (await inventory.client.get(url, headers=DE_MANAGER)).json()["id"] == german["id"]
        hidden = await inventory.client.get(url, headers=FR_MANAGER)
        assert hidden.status_code == 404
        assert hidden.json()["type"].endswith("/account-request-not-found")
        cancel = await inventory.client.post(f"{url}/cancel", headers=FR_MANAGER)
        assert cancel.status_code == 404
        unknown = await inventory.client.get(f"/account-requests/{uuid.uuid4()}", headers=HQ_ADMIN)
        assert unknown.status_code == 404


class TestCancelling:
    async def test_the_requester_or_a_manager_cancels_an_open_request(
        self, inventory: RunningService
    ) -> None:
        mine = await ask(inventory, platform="x", handle="orange_one")
        theirs = await ask(inventory, platform="x", handle="orange_two")
        url = f"/account-requests/{mine['id']}/cancel"
        refused = await inventory.client.post(url, headers=FR_OTHER_CONTRIBUTOR)
        assert refused.status_code == 403
        cancelled = await inventory.client.post(url, headers=FR_CONTRIBUTOR)
        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "cancelled"
        assert cancelled.json()["decided_at"] is not None
        twice = await inventory.client.post(url, headers=FR_CONTRIBUTOR)
        assert twice.status_code == 409
        assert twice.json()["type"].endswith("/account-request-closed")
        assert twice.json()["request_status"] == "cancelled"
        by_manager = await inventory.client.post(
            f"/account-requests/{theirs['id']}/cancel", headers=FR_MANAGER
        )
        assert by_manager.status_code == 200

        closed = await inventory.events("chorus.inventory.account.request_closed")
        assert [(e["subject"], e["data"]["status"]) for e in closed] == [
            (mine["id"], "cancelled"),
            (theirs["id"], "cancelled"),
        ]
        actors = await inventory.scalar(
            "SELECT string_agg(actor, ',' ORDER BY id) FROM audit_log"
            " WHERE entity_type = 'account_request' AND action = 'cancelled'"
        )
        assert actors == "claire,francois"


class TestDecisionsThroughTheBroker:
    async def test_a_grant_makes_the_account_official_once(
        self, inventory_worker: RunningService, infrastructure: Infrastructure
    ) -> None:
        service = inventory_worker
        request = await ask(service, platform="x", handle="Orange_Lyon", display_name="Orange Lyon")
        grant = decision(GRANTED, request["id"], comment="Looks good", decided_by="alice")
        await send(infrastructure, APPROVALS_TOPIC, grant)

        async def approved() -> bool:
            return (await get_request(service, request["id"]))["status"] == "approved"

        await eventually(approved)
        decided = await get_request(service, request["id"])
        assert decided["decision_comment"] == "Looks good"
        [account] = await accounts_by_handle(service, "orange_lyon")
        assert decided["account_id"] == account["id"]
        assert account["status"] == "official"
        assert account["district_id"] == "fr"
        assert account["display_name"] == "Orange Lyon"
        assert account["purpose"] == "Local news for France"
        assert [(o["person"], o["role"]) for o in account["owners"]] == [("claire", "primary")]
        [registered] = await service.events("chorus.inventory.account.registered")
        assert registered["subject"] == account["id"]
        assert registered["data"]["status"] == "official"
        assert registered["data"]["request_id"] == request["id"]
        trail = (
            await service.client.get(f"/accounts/{account['id']}/audit", headers=HQ_ADMIN)
        ).json()["items"]
        assert [(e["action"], e["actor"]) for e in trail] == [("registered", "approvals")]
        [closed] = await service.events("chorus.inventory.account.request_closed")
        assert closed["data"]["status"] == "approved"
        assert closed["data"]["account_id"] == account["id"]
        assert closed["data"]["decided_by"] == "alice"

        # The same event redelivered, a second grant and a late rejection: nothing changes.
        consumer = consumer_of(service, "approvals")
        handled_before = consumer.handled
        await send(
            infrastructure,
            APPROVALS_TOPIC,
            grant,
            decision(GRANTED, request["id"], comment="again"),
            decision(REJECTED, request["id"], comment="too late"),
        )

        async def all_read() -> bool:
            return consumer.handled == handled_before + 2 and consumer.duplicates >= 1

        await eventually(all_read)
        assert await get_request(service, request["id"]) == decided
        assert len(await accounts_by_handle(service, "orange_lyon")) == 1
        assert len(await service.events("chorus.inventory.account.registered")) == 1
        assert len(await service.events("chorus.inventory.account.request_closed")) == 1

    async def test_a_rejection_closes_the_request(
        self, inventory_worker: RunningService, infrastructure: Infrastructure
    ) -> None:
        service = inventory_worker
        request = await ask(service, platform="instagram", handle="orange_lille")
        other = await ask(service, platform="instagram", handle="orange_lens")
        await send(
            infrastructure,
            APPROVALS_TOPIC,
            # Another kind of subject decided by approvals is not ours.
            decision(GRANTED, other["id"], subject_kind="post"),
            decision(REJECTED, request["id"], comment="One account per region", decided_by="bo"),
        )

        async def rejected() -> bool:
            return (await get_request(service, request["id"]))["status"] == "rejected"

        await eventually(rejected)
        decided = await get_request(service, request["id"])
        assert decided["decision_comment"] == "One account per region"
        assert decided["account_id"] is None
        assert decided["decided_at"] is not None
        assert (await get_request(service, other["id"]))["status"] == "open"
        assert await accounts_by_handle(service, "orange_l") == []
        [closed] = await service.events("chorus.inventory.account.request_closed")
        assert (closed["subject"], closed["data"]["status"]) == (request["id"], "rejected")
        audited = await service.scalar(
            "SELECT changes->>'decided_by' FROM audit_log WHERE entity_type = 'account_request'"
            " AND entity_id = :id AND action = 'rejected' AND actor = 'approvals'",
            id=request["id"],
        )
        assert audited == "bo"


class TestDecisionEdgeCases:
    """The handlers run as the consumer runs them, without waiting for the broker."""

    async def test_grant_links_an_account_registered_meanwhile_and_makes_it_official(
        self, inventory: RunningService
    ) -> None:
        request = await ask(inventory, platform="x", handle="orange_nice")
        registered = await inventory.client.post(
            "/accounts",
            json={"platform": "x", "handle": "Orange_Nice", "district_id": "fr-paris"},
            headers=FR_MANAGER,
        )
        assert registered.status_code == 201
        await handle_directly(inventory, decision(GRANTED, request["id"]))

        decided = await get_request(inventory, request["id"])
        assert decided["status"] == "approved"
        assert decided["account_id"] == registered.json()["id"]
        [account] = await accounts_by_handle(inventory, "orange_nice")
        assert account["status"] == "official"
        assert account["district_id"] == "fr-paris"
        assert len(await inventory.events("chorus.inventory.account.registered")) == 1
        [changed] = await inventory.events("chorus.inventory.account.status_changed")
        assert (changed["data"]["previous_status"], changed["data"]["status"]) == (
            "pending",
            "official",
        )
        actor = await inventory.scalar(
            "SELECT actor FROM audit_log WHERE entity_type = 'account'"
            " AND action = 'status_changed'"
        )
        assert actor == "approvals"

    async def test_grant_links_an_account_that_cannot_become_official_as_it_is(
        self, inventory: RunningService
    ) -> None:
        request = await ask(inventory, platform="x", handle="orange_pau")
        registered = await inventory.client.post(
            "/accounts",
            json={"platform": "x", "handle": "orange_pau", "district_id": "fr"},
            headers=FR_MANAGER,
        )
        archived = await inventory.client.post(
            f"/accounts/{registered.json()['id']}/status",
            json={"status": "archived"},
            headers=FR_MANAGER,
        )
        assert archived.status_code == 200
        await handle_directly(inventory, decision(GRANTED, request["id"]))
        decided = await get_request(inventory, request["id"])
        assert (decided["status"], decided["account_id"]) == ("approved", registered.json()["id"])
        [account] = await accounts_by_handle(inventory, "orange_pau")
        assert account["status"] == "archived"

    async def test_stale_or_unknown_decisions_change_nothing(
        self, inventory: RunningService
    ) -> None:
        request = await ask(inventory, platform="x", handle="orange_metz")
        cancelled = await inventory.client.post(
            f"/account-requests/{request['id']}/cancel", headers=FR_CONTRIBUTOR
        )
        assert cancelled.status_code == 200
        events_before = len(await inventory.events())
        await handle_directly(inventory, decision(GRANTED, request["id"]))
        await handle_directly(inventory, decision(REJECTED, request["id"]))
        await handle_directly(inventory, decision(GRANTED, str(uuid.uuid4())))
        assert await get_request(inventory, request["id"]) == cancelled.json()
        assert await accounts_by_handle(inventory, "orange_metz") == []
        assert len(await inventory.events()) == events_before
