"""Found pages and takedown cases: reporting by URL with evidence, one case under way per
account, the case's status machine and what it does to the account, the timeline, listing,
and district-scoped access."""

from __future__ import annotations

from typing import Any

import pytest

from tests.inventory.factories import (
    DE_MANAGER,
    FOUND_PAGE_EVIDENCE,
    FR_MANAGER,
    FR_VIEWER,
    HQ_ADMIN,
    report_found_page,
)
from tests.kit import RunningService

pytestmark = pytest.mark.asyncio


async def move(
    service: RunningService,
    case_id: str,
    status: str,
    headers: dict[str, str] | None = None,
    **body: Any,
) -> Any:
    return await service.client.post(
        f"/takedowns/{case_id}/transitions",
        json={"status": status, "note": f"now {status}", **body},
        headers=headers or FR_MANAGER,
    )


async def audit_actions(service: RunningService, case_id: str) -> list[str]:
    rows = await service.scalar(
        "SELECT array_agg(action ORDER BY id) FROM audit_log"
        " WHERE entity_type = 'takedown' AND entity_id = :id",
        id=case_id,
    )
    return list(rows or [])


async def test_report_by_url_registers_the_page_and_opens_a_case(
    inventory: RunningService,
) -> None:
    found = await report_found_page(inventory, display_name="Orange Support", notes="Phishing page")
    account, case = found["account"], found["case"]
    assert found["registered"] is True
    assert (account["platform"], account["handle"]) == ("x", "orange_fake")
    assert account["status"] == "rogue"
    assert account["district_id"] == "fr"
    assert account["display_name"] == "Orange Support"
    assert case["status"] == "open"
    assert case["closed"] is False
    assert case["allowed_transitions"] == ["escalated", "kept", "reported"]
    assert case["account_id"] == account["id"]
    assert case["account"]["profile_url"] == "https://x.com/orange_fake"
    assert case["district_id"] == "fr"
    assert case["opened_by"] == "francois"
    assert case["platform_reference"] is None
    assert [e["note"] for e in case["evidence"]] == [e["note"] for e in FOUND_PAGE_EVIDENCE]
    assert case["evidence"][0]["url"] == FOUND_PAGE_EVIDENCE[0]["url"]
    assert case["evidence"][0]["captured_at"] == "2026-11-20T09:30:00+01:00"
    [opening] = case["timeline"]
    assert (opening["status"], opening["text"], opening["author"]) == (
        "open",
        "Phishing page",
        "francois",
    )

    [registered] = await inventory.events("chorus.inventory.account.registered")
    assert registered["data"]["status"] == "rogue"
    [opened] = await inventory.events("chorus.inventory.takedown.opened")
    assert opened["subject"] == case["id"]
    assert opened["data"] == {
        "id": case["id"],
        "account_id": account["id"],
        "district_id": "fr",
        "status": "open",
        "previous_status": None,
        "platform_reference": None,
        "platform": "x",
        "handle": "orange_fake",
        "profile_url": "https://x.com/orange_fake",
        "account_status": "rogue",
    }
    assert await audit_actions(inventory, case["id"]) == ["opened"]
    opened_by = await inventory.scalar(
        "SELECT actor FROM audit_log WHERE entity_type = 'takedown' AND entity_id = :id",
        id=case["id"],
    )
    assert opened_by == "francois"
    trail = (
        await inventory.client.get(f"/accounts/{account['id']}/audit", headers=FR_MANAGER)
    ).json()["items"]
    assert [e["action"] for e in trail] == ["registered", "found_page_reported"]
    assert trail[1]["changes"]["classification"] == "rogue"
    assert len(trail[1]["changes"]["evidence"]) == 2

    fetched = await inventory.client.get(f"/takedowns/{case['id']}", headers=FR_VIEWER)
    assert fetched.status_code == 200
    assert fetched.json() == case


async def test_report_without_a_case(inventory: RunningService) -> None:
    found = await report_found_page(inventory, classification="fan", open_case=False)
    assert found["case"] is None
    assert found["account"]["status"] == "fan"
    assert await inventory.events("chorus.inventory.takedown.opened") == []


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"profile_url": "https://example.com/orange_fake"}, "invalid-profile-url"),
        ({"profile_url": "ftp://x.com/orange_fake"}, "invalid-profile-url"),
        ({"profile_url": "not a url"}, "invalid-profile-url"),
        ({"profile_url": "https://x.com/" + "a" * 2100}, "validation-error"),
        ({"evidence": []}, "validation-error"),
        ({"evidence": [{"note": "same"}] * 21}, "validation-error"),
        ({"evidence": [{"note": ""}]}, "validation-error"),
        ({"evidence": [{"note": "x" * 2001}]}, "validation-error"),
        ({"evidence": [{"url": "javascript:alert(1)", "note": "x"}]}, "validation-error"),
        ({"evidence": [{"note": "x", "captured_at": "2026-11-20T09:30:00"}]}, "validation-error"),
        ({"classification": "official"}, "validation-error"),
        ({"district_id": "Not A Slug"}, "validation-error"),
        ({"notes": "x" * 5001}, "validation-error"),
    ],
)
async def test_a_bad_report_is_422_and_registers_nothing(
    inventory: RunningService, body: dict[str, Any], problem: str
) -> None:
    payload = {
        "profile_url": "https://x.com/orange_fake",
        "district_id": "fr",
        "classification": "rogue",
        "evidence": FOUND_PAGE_EVIDENCE,
        **body,
    }
    response = await inventory.client.post("/found-pages", json=payload, headers=FR_MANAGER)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/" + problem)
    assert await inventory.scalar("SELECT count(*) FROM accounts") == 0
    assert await inventory.scalar("SELECT count(*) FROM takedown_cases") == 0


async def test_a_known_page_is_reused_and_moved_to_the_classification(
    inventory: RunningService,
) -> None:
    pending = await inventory.client.post(
        "/accounts",
        json={"platform": "x", "handle": "Orange_Fans", "district_id": "fr-paris"},
        headers=FR_MANAGER,
    )
    assert pending.status_code == 201
    # Reported by a URL in other letters, from the parent district: still the same account.
    found = await report_found_page(
        inventory, profile_url="https://twitter.com/orange_fans", classification="fan"
    )
    assert found["registered"] is False
    assert found["account"]["id"] == pending.json()["id"]
    assert found["account"]["status"] == "fan"
    assert found["case"]["district_id"] == "fr-paris"
    [changed] = await inventory.events("chorus.inventory.account.status_changed")
    assert (changed["data"]["previous_status"], changed["data"]["status"]) == ("pending", "fan")
    assert len(await inventory.events("chorus.inventory.account.registered")) == 1


async def test_a_known_page_that_cannot_take_the_classification_is_409_naming_it(
    inventory: RunningService,
) -> None:
    official = await inventory.client.post(
        "/accounts",
        json={"platform": "x", "handle": "orange", "district_id": "fr", "status": "official"},
        headers=FR_MANAGER,
    )
    response = await inventory.client.post(
        "/found-pages",
        json={
            "profile_url": "https://x.com/Orange",
            "district_id": "fr",
            "classification": "rogue",
            "evidence": FOUND_PAGE_EVIDENCE,
        },
        headers=FR_MANAGER,
    )
    assert response.status_code == 409
    body = response.json()
    assert body["type"].endswith("/page-already-registered")
    assert body["existing_account_id"] == official.json()["id"]
    assert body["current"] == "official"
    assert await inventory.scalar("SELECT count(*) FROM takedown_cases") == 0


async def test_a_known_page_in_a_district_the_reporter_cannot_see_is_not_named(
    inventory: RunningService,
) -> None:
    await report_found_page(inventory, DE_MANAGER, district_id="de")
    response = await inventory.client.post(
        "/found-pages",
        json={
            "profile_url": "https://x.com/orange_fake",
            "district_id": "fr",
            "classification": "rogue",
            "evidence": FOUND_PAGE_EVIDENCE,
        },
        headers=FR_MANAGER,
    )
    assert response.status_code == 409
    assert response.json()["type"].endswith("/page-already-registered")
    assert "existing_account_id" not in response.json()


async def test_one_case_under_way_per_account(inventory: RunningService) -> None:
    found = await report_found_page(inventory)
    account_id, case_id = found["account"]["id"], found["case"]["id"]
    again = await inventory.client.post(
        f"/accounts/{account_id}/takedowns", json={}, headers=FR_MANAGER
    )
    assert again.status_code == 409
    assert again.json()["type"].endswith("/takedown-under-way")
    assert again.json()["existing_case_id"] == case_id
    reported_again = await inventory.client.post(
        "/found-pages",
        json={
            "profile_url": "https://x.com/orange_fake",
            "district_id": "fr",
            "classification": "rogue",
            "evidence": FOUND_PAGE_EVIDENCE,
        },
        headers=FR_MANAGER,
    )
    assert reported_again.status_code == 409
    assert reported_again.json()["existing_case_id"] == case_id
    # Past its first status (`open`) the case is still under way, and still blocks a new one.
    moved = await move(inventory, case_id, "reported", platform_reference="X-CASE-7")
    assert moved.status_code == 200, moved.text
    still = await inventory.client.post(
        f"/accounts/{account_id}/takedowns", json={}, headers=FR_MANAGER
    )
    assert still.status_code == 409
    assert still.json()["type"].endswith("/takedown-under-way")
    assert still.json()["existing_case_id"] == case_id
    # Once the case is closed, a new one can open.
    assert (await move(inventory, case_id, "kept")).status_code == 200
    second = await inventory.client.post(
        f"/accounts/{account_id}/takedowns",
        json={"evidence": [{"note": "It is back to phishing"}], "note": "Reopened"},
        headers=FR_MANAGER,
    )
    assert second.status_code == 201, second.text
    assert second.json()["id"] != case_id
    assert second.json()["timeline"][0]["text"] == "Reopened"
    assert len(await inventory.events("chorus.inventory.takedown.opened")) == 2


@pytest.mark.parametrize("status", ["pending", "official"])
async def test_only_found_pages_get_cases(inventory: RunningService, status: str) -> None:
    account = await inventory.client.post(
        "/accounts",
        json={"platform": "x", "handle": "orange", "district_id": "fr", "status": status},
        headers=FR_MANAGER,
    )
    response = await inventory.client.post(
        f"/accounts/{account.json()['id']}/takedowns", json={}, headers=FR_MANAGER
    )
    assert response.status_code == 422
    assert response.json()["type"].endswith("/not-a-found-page")
    assert response.json()["current"] == status


async def test_an_illegal_transition_is_422_with_the_allowed_ones(
    inventory: RunningService,
) -> None:
    case_id = (await report_found_page(inventory))["case"]["id"]
    removed = await move(inventory, case_id, "removed")
    assert removed.status_code == 422
    body = removed.json()
    assert body["type"].endswith("/illegal-takedown-transition")
    assert body["current"] == "open"
    assert body["allowed"] == ["escalated", "kept", "reported"]
    assert (await move(inventory, case_id, "kept")).status_code == 200
    after_kept = await move(inventory, case_id, "escalated")
    assert after_kept.status_code == 422
    assert (after_kept.json()["current"], after_kept.json()["allowed"]) == ("kept", [])
    reopened = await move(inventory, case_id, "open")
    assert reopened.status_code == 422
    assert reopened.json()["type"].endswith("/validation-error")
    assert len(await inventory.events("chorus.inventory.takedown.updated")) == 1


async def test_reporting_to_the_platform_needs_its_reference(inventory: RunningService) -> None:
    case_id = (await report_found_page(inventory))["case"]["id"]
    missing = await move(inventory, case_id, "reported")
    assert missing.status_code == 422
    assert missing.json()["type"].endswith("/platform-reference-required")
    assert await inventory.events("chorus.inventory.takedown.updated") == []
    reported = await move(inventory, case_id, "reported", platform_reference="X-CASE-0042")
    assert reported.status_code == 200, reported.text
    assert reported.json()["status"] == "reported"
    assert reported.json()["platform_reference"] == "X-CASE-0042"
    [event] = await inventory.events("chorus.inventory.takedown.updated")
    assert event["subject"] == case_id
    assert event["data"]["previous_status"] == "open"
    assert event["data"]["status"] == "reported"
    assert event["data"]["platform_reference"] == "X-CASE-0042"
    assert await audit_actions(inventory, case_id) == ["opened", "status_changed"]
    changes = await inventory.scalar(
        "SELECT changes FROM audit_log WHERE entity_type = 'takedown' AND action = 'status_changed'"
    )
    assert changes["status"] == ["open", "reported"]
    assert changes["platform_reference"] == [None, "X-CASE-0042"]


async def test_removed_archives_the_account(inventory: RunningService) -> None:
    found = await report_found_page(inventory)
    account_id, case_id = found["account"]["id"], found["case"]["id"]
    await move(inventory, case_id, "reported", platform_reference="X-1")
    removed = await move(inventory, case_id, "removed")
    assert removed.status_code == 200, removed.text
    assert removed.json()["closed"] is True
    assert removed.json()["allowed_transitions"] == []
    assert removed.json()["account"]["status"] == "archived"
    account = await inventory.client.get(f"/accounts/{account_id}", headers=FR_MANAGER)
    assert account.json()["status"] == "archived"
    [changed] = await inventory.events("chorus.inventory.account.status_changed")
    assert (changed["data"]["previous_status"], changed["data"]["status"]) == (
        "rogue",
        "archived",
    )
    last = (await inventory.events("chorus.inventory.takedown.updated"))[-1]
    assert last["data"]["status"] == "removed"
    assert last["data"]["account_status"] == "archived"


async def test_transferred_makes_the_account_official(inventory: RunningService) -> None:
    found = await report_found_page(inventory, classification="fan")
    account_id, case_id = found["account"]["id"], found["case"]["id"]
    await move(inventory, case_id, "escalated")
    transferred = await move(inventory, case_id, "transferred")
    assert transferred.status_code == 200, transferred.text
    assert transferred.json()["account"]["status"] == "official"
    account = await inventory.client.get(f"/accounts/{account_id}", headers=FR_MANAGER)
    assert account.json()["status"] == "official"
    [changed] = await inventory.events("chorus.inventory.account.status_changed")
    assert (changed["data"]["previous_status"], changed["data"]["status"]) == ("fan", "official")


async def test_kept_leaves_the_account_as_it_is(inventory: RunningService) -> None:
    found = await report_found_page(inventory, classification="fan")
    kept = await move(inventory, found["case"]["id"], "kept")
    assert kept.json()["account"]["status"] == "fan"
    assert await inventory.events("chorus.inventory.account.status_changed") == []


async def test_the_timeline_lists_changes_and_notes_in_order(inventory: RunningService) -> None:
    case_id = (await report_found_page(inventory, notes="Found by the social team"))["case"]["id"]
    note = await inventory.client.post(
        f"/takedowns/{case_id}/notes", json={"text": "Screenshot sent to legal"}, headers=FR_MANAGER
    )
    assert note.status_code == 201, note.text
    assert (note.json()["status"], note.json()["author"]) == (None, "francois")
    await move(inventory, case_id, "reported", platform_reference="X-1", note="Reported via form")
    await inventory.client.post(
        f"/takedowns/{case_id}/notes", json={"text": "No answer after a week"}, headers=HQ_ADMIN
    )
    await move(inventory, case_id, "escalated", HQ_ADMIN, note="Escalated to partner manager")
    timeline = (await inventory.client.get(f"/takedowns/{case_id}", headers=FR_VIEWER)).json()[
        "timeline"
    ]
    assert [(e["status"], e["text"], e["author"]) for e in timeline] == [
        ("open", "Found by the social team", "francois"),
        (None, "Screenshot sent to legal", "francois"),
        ("reported", "Reported via form", "francois"),
        (None, "No answer after a week", "regina"),
        ("escalated", "Escalated to partner manager", "regina"),
    ]
    assert timeline == sorted(timeline, key=lambda e: e["id"])
    assert await audit_actions(inventory, case_id) == [
        "opened",
        "note_added",
        "status_changed",
        "note_added",
        "status_changed",
    ]
    # A plain note is no state change: only the two transitions are published.
    updates = await inventory.events("chorus.inventory.takedown.updated")
    assert [e["data"]["status"] for e in updates] == ["reported", "escalated"]
    empty = await inventory.client.post(
        f"/takedowns/{case_id}/notes", json={"text": ""}, headers=FR_MANAGER
    )
    assert empty.status_code == 422


async def test_list_filters_and_pages_newest_first(inventory: RunningService) -> None:
    cases: dict[str, str] = {}
    for handle, district, headers in [
        ("fake_one", "fr", FR_MANAGER),
        ("fake_two", "fr-paris", FR_MANAGER),
        ("fake_three", "de", DE_MANAGER),
        ("fake_four", "fr", FR_MANAGER),
        ("fake_five", "fr-paris", FR_MANAGER),
    ]:
        found = await report_found_page(
            inventory, headers, profile_url=f"https://x.com/{handle}", district_id=district
        )
        cases[handle] = found["case"]["id"]
    await move(inventory, cases["fake_four"], "kept")

    async def handles(query: str, headers: dict[str, str] = HQ_ADMIN) -> list[str]:
        response = await inventory.client.get(f"/takedowns?{query}", headers=headers)
        assert response.status_code == 200, response.text
        return [c["account"]["handle"] for c in response.json()["items"]]

    newest_first = ["fake_five", "fake_four", "fake_three", "fake_two", "fake_one"]
    assert await handles("") == newest_first
    assert await handles("", FR_VIEWER) == ["fake_five", "fake_four", "fake_two", "fake_one"]
    assert await handles("district_id=fr-paris") == ["fake_five", "fake_two"]
    assert await handles("status=kept") == ["fake_four"]
    assert await handles("status=open&district_id=fr") == ["fake_five", "fake_two", "fake_one"]
    account_id = await inventory.client.get(f"/takedowns/{cases['fake_two']}", headers=HQ_ADMIN)
    assert await handles(f"account_id={account_id.json()['account_id']}") == ["fake_two"]
    hidden = await inventory.client.get("/takedowns?district_id=de", headers=FR_MANAGER)
    assert hidden.status_code == 404

    seen: list[str] = []
    cursor = ""
    pages = 0
    while True:
        response = await inventory.client.get(f"/takedowns?limit=2{cursor}", headers=HQ_ADMIN)
        page = response.json()
        assert len(page["items"]) <= 2
        seen += [c["account"]["handle"] for c in page["items"]]
        pages += 1
        if not page["next_cursor"]:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert (seen, pages) == (newest_first, 3)
    bad = await inventory.client.get("/takedowns?cursor=bm9wZQ", headers=HQ_ADMIN)
    assert bad.status_code == 400
    assert bad.json()["type"].endswith("/invalid-cursor")
    forged = await inventory.client.get("/takedowns?cursor=WyJ4IiwieSJd", headers=HQ_ADMIN)
    assert forged.status_code == 400


async def test_another_districts_case_does_not_exist(inventory: RunningService) -> None:
    found = await report_found_page(inventory, DE_MANAGER, district_id="de")
    case_id, account_id = found["case"]["id"], found["account"]["id"]
    for response in (
        await inventory.client.get(f"/takedowns/{case_id}", headers=FR_MANAGER),
        await move(inventory, case_id, "kept", FR_MANAGER),
        await inventory.client.post(
            f"/takedowns/{case_id}/notes", json={"text": "mine"}, headers=FR_MANAGER
        ),
        await inventory.client.post(
            f"/accounts/{account_id}/takedowns", json={}, headers=FR_MANAGER
        ),
    ):
        assert response.status_code == 404, response.text
    assert (
        (await inventory.client.get(f"/takedowns/{case_id}", headers=FR_MANAGER))
        .json()["type"]
        .endswith("/takedown-not-found")
    )
    missing = await inventory.client.get(
        "/takedowns/00000000-0000-0000-0000-000000000000", headers=HQ_ADMIN
    )
    assert missing.status_code == 404
    assert (
        await inventory.client.get(f"/takedowns/{case_id}", headers=DE_MANAGER)
    ).status_code == 200
    assert await inventory.events("chorus.inventory.takedown.updated") == []


async def test_a_viewer_reads_but_does_not_change(inventory: RunningService) -> None:
    case_id = (await report_found_page(inventory, district_id="fr-paris"))["case"]["id"]
    assert (
        await inventory.client.get(f"/takedowns/{case_id}", headers=FR_VIEWER)
    ).status_code == 200
    forbidden = [
        await move(inventory, case_id, "kept", FR_VIEWER),
        await inventory.client.post(
            f"/takedowns/{case_id}/notes", json={"text": "hello"}, headers=FR_VIEWER
        ),
        await inventory.client.post(
            "/found-pages",
            json={
                "profile_url": "https://x.com/other_fake",
                "district_id": "fr",
                "classification": "fan",
                "evidence": FOUND_PAGE_EVIDENCE,
            },
            headers=FR_VIEWER,
        ),
    ]
    for response in forbidden:
        assert response.status_code == 403, response.text
        assert response.json()["type"].endswith("/forbidden")
    detail = (await inventory.client.get(f"/takedowns/{case_id}", headers=FR_VIEWER)).json()
    assert detail["status"] == "open"
    assert len(detail["timeline"]) == 1
