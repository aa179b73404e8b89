"""Accounts: registration by handle or URL, platform rules, uniqueness, status transitions,
district-scoped access, search, the presence summary and the audit trail."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.inventory.factories import (
    DE_MANAGER,
    FR_MANAGER,
    FR_VIEWER,
    HQ_ADMIN,
    register_account,
)
from tests.kit import RunningService

pytestmark = pytest.mark.asyncio


async def test_register_by_platform_and_handle(inventory: RunningService) -> None:
    account = await register_account(
        inventory,
        FR_MANAGER,
        platform="Instagram",
        handle="@Orange_France",
        district_id="fr",
        display_name="Orange France",
        owners=[{"person": "francois", "role": "primary"}, {"person": "amelie", "role": "backup"}],
        tags=["brand", "consumer"],
        language="fr",
        country="FR",
    )
    assert account["platform"] == "instagram"
    assert account["handle"] == "Orange_France"
    assert account["profile_url"] == "https://www.instagram.com/Orange_France/"
    assert account["status"] == "pending"
    assert {o["person"] for o in account["owners"]} == {"francois", "amelie"}
    [event] = await inventory.events("chorus.inventory.account.registered")
    assert event["subject"] == account["id"]
    assert event["data"]["handle"] == "Orange_France"
    assert event["data"]["district_id"] == "fr"


@pytest.mark.parametrize(
    ("url", "platform", "handle"),
    [
        ("https://www.instagram.com/orange/", "instagram", "orange"),
        ("https://twitter.com/Orange_France?lang=fr", "x", "Orange_France"),
        ("https://m.facebook.com/orange.france", "facebook", "orange.france"),
        ("https://www.linkedin.com/company/orange/", "linkedin", "orange"),
        ("https://www.youtube.com/@Orange", "youtube", "Orange"),
        ("https://www.tiktok.com/@orange", "tiktok", "orange"),
        ("https://bsky.app/profile/orange.bsky.social", "bluesky", "orange.bsky.social"),
        ("https://www.threads.net/@orange", "threads", "orange"),
        ("https://www.pinterest.fr/orange_fr/", "pinterest", "orange_fr"),
        ("https://mastodon.social/@orange", "mastodon", "orange@mastodon.social"),
    ],
)
async def test_register_by_profile_url(
    inventory: RunningService, url: str, platform: str, handle: str
) -> None:
    account = await register_account(inventory, profile_url=url, district_id="hq")
    assert (account["platform"], account["handle"]) == (platform, handle)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"profile_url": "ftp://instagram.com/x"}, "invalid-profile-url"),
        ({"profile_url": "https://example.com/someone"}, "invalid-profile-url"),
        ({"profile_url": "not a url at all"}, "invalid-profile-url"),
        ({"platform": "myspace", "handle": "tom"}, "unknown-platform"),
        ({"platform": "x", "handle": "far_too_long_for_x_handles"}, "invalid-handle"),
        ({"platform": "instagram", "handle": "spaces are bad"}, "invalid-handle"),
        ({"platform": "facebook", "handle": "abc"}, "invalid-handle"),
        ({"platform": "x"}, "validation-error"),
        ({"platform": "x", "handle": "ok", "country": "France"}, "validation-error"),
    ],
)
async def test_bad_input_is_422_problem(
    inventory: RunningService, body: dict[str, Any], problem: str
) -> None:
    response = await inventory.client.post(
        "/accounts", json={"district_id": "hq", **body}, headers=HQ_ADMIN
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/" + problem)


async def test_same_platform_and_handle_is_409_naming_the_existing(
    inventory: RunningService,
) -> None:
    first = await register_account(inventory, platform="x", handle="OrangeFR", district_id="fr")
    again = await inventory.client.post(
        "/accounts",
        json={"profile_url": "https://x.com/orangefr", "district_id": "de"},
        headers=HQ_ADMIN,
    )
    assert again.status_code == 409
    assert again.json()["existing_account_id"] == first["id"]
    # The same handle on another platform is another account.
    await register_account(inventory, platform="instagram", handle="orangefr", district_id="fr")


async def test_illegal_transition_is_422_with_the_allowed_ones(inventory: RunningService) -> None:
    account = await register_account(inventory, platform="x", handle="orange", district_id="fr")
    dormant = await inventory.client.post(
        f"/accounts/{account['id']}/status", json={"status": "dormant"}, headers=HQ_ADMIN
    )
    assert dormant.status_code == 422
    body = dormant.json()
    assert body["type"].endswith("/illegal-status-transition")
    assert body["current"] == "pending"
    assert body["allowed"] == ["archived", "duplicate", "fan", "official", "rogue", "unofficial"]
    official = await inventory.client.post(
        f"/accounts/{account['id']}/status",
        json={"status": "official", "reason": "verified"},
        headers=HQ_ADMIN,
    )
    assert official.status_code == 200
    assert official.json()["status"] == "official"
    [event] = await inventory.events("chorus.inventory.account.status_changed")
    assert (event["data"]["previous_status"], event["data"]["status"]) == ("pending", "official")


async def test_duplicate_names_an_original_on_the_same_platform(
    inventory: RunningService,
) -> None:
    original = await register_account(inventory, platform="x", handle="orange", district_id="fr")
    copy = await register_account(inventory, platform="x", handle="orange_fr2", district_id="fr")
    other = await register_account(
        inventory, platform="instagram", handle="orange", district_id="fr"
    )
    url = f"/accounts/{copy['id']}/status"
    missing = await inventory.client.post(url, json={"status": "duplicate"}, headers=HQ_ADMIN)
    assert missing.status_code == 422
    cross = await inventory.client.post(
        url, json={"status": "duplicate", "duplicate_of": other["id"]}, headers=HQ_ADMIN
    )
    assert cross.json()["type"].endswith("/invalid-duplicate")
    ok = await inventory.client.post(
        url, json={"status": "duplicate", "duplicate_of": original["id"]}, headers=HQ_ADMIN
    )
    assert ok.status_code == 200
    assert ok.json()["duplicate_of"] == original["id"]


async def test_another_districts_account_does_not_exist_for_a_manager(
    inventory: RunningService,
) -> None:
    german = await register_account(inventory, platform="x", handle="orange_de", district_id="de")
    url = f"/accounts/{german['id']}"
    assert (await inventory.client.get(url, headers=FR_MANAGER)).status_code == 404
    patched = await inventory.client.patch(url, json={"notes": "mine"}, headers=FR_MANAGER)
    assert patched.status_code == 404
    status = await inventory.client.post(
        f"{url}/status", json={"status": "official"}, headers=FR_MANAGER
    )
    assert status.status_code == 404
    assert (await inventory.client.get(f"{url}/audit", headers=FR_MANAGER)).status_code == 404
    registered_there = await inventory.client.post(
        "/accounts",
        json={"platform": "x", "handle": "sneaky", "district_id": "de"},
        headers=FR_MANAGER,
    )
    assert registered_there.status_code == 404
    assert (await inventory.client.get(url, headers=DE_MANAGER)).status_code == 200


async def test_a_viewer_reads_but_does_not_change(inventory: RunningService) -> None:
    account = await register_account(
        inventory, platform="x", handle="orange_fr", district_id="fr-paris"
    )
    url = f"/accounts/{account['id']}"
    assert (await inventory.client.get(url, headers=FR_VIEWER)).status_code == 200
    assert (
        await inventory.client.patch(url, json={"notes": "x"}, headers=FR_VIEWER)
    ).status_code == 403


async def test_update_moves_and_edits_and_is_audited(inventory: RunningService) -> None:
    account = await register_account(
        inventory,
        platform="x",
        handle="orange_fr",
        district_id="fr",
        owners=[{"person": "francois", "role": "primary"}],
    )
    url = f"/accounts/{account['id']}"
    updated = await inventory.client.patch(
        url,
        json={
            "display_name": "Orange FR",
            "district_id": "fr-paris",
            "tags": ["b", "a", "b"],
            "owners": [{"person": "paul", "role": "primary", "email": "paul@example.com"}],
        },
        headers=FR_MANAGER,
    )
    assert updated.status_code == 200, updated.text
    body = updated.json()
    assert body["district_id"] == "fr-paris"
    assert body["tags"] == ["a", "b"]
    assert [o["person"] for o in body["owners"]] == ["paul"]
    assert body["version"] == 2
    # Moving to a district the manager does not manage is not possible.
    away = await inventory.client.patch(url, json={"district_id": "de"}, headers=FR_MANAGER)
    assert away.status_code == 404
    # Nor to no district at all: an account always lies in one (found by fuzzing: was 404).
    nowhere = await inventory.client.patch(url, json={"district_id": None}, headers=FR_MANAGER)
    assert nowhere.status_code == 422, nowhere.text
    assert nowhere.json()["errors"][0]["loc"] == ["body"]
    trail = (await inventory.client.get(f"{url}/audit", headers=FR_MANAGER)).json()["items"]
    assert [e["action"] for e in trail] == ["registered", "updated"]
    assert trail[1]["actor"] == "francois"
    assert trail[1]["changes"]["district_id"] == ["fr", "fr-paris"]
    assert trail[1]["changes"]["display_name"] == [None, "Orange FR"]
    [event] = await inventory.events("chorus.inventory.account.updated")
    assert set(event["data"]["changed"]) == {"display_name", "district_id", "tags", "owners"}


async def test_the_audit_log_is_append_only(inventory: RunningService) -> None:
    await register_account(inventory, platform="x", handle="orange_fr", district_id="fr")
    async with inventory.sessions() as session:
        with pytest.raises(DBAPIError, match="append-only"):
            await session.execute(text("UPDATE audit_log SET actor = 'someone else'"))
    async with inventory.sessions() as session:
        with pytest.raises(DBAPIError, match="append-only"):
            await session.execute(text("DELETE FROM audit_log"))


async def test_search_filters_and_pages(inventory: RunningService) -> None:
    for handle, district, platform in [
        ("orange_fr", "fr", "x"),
        ("orange_paris", "fr-paris", "x"),
        ("orange_de", "de", "x"),
        ("orangefrance", "fr", "instagram"),
        ("sosh", "fr", "x"),
    ]:
        await register_account(
            inventory,
            platform=platform,
            handle=handle,
            district_id=district,
            owners=[{"person": f"owner-{district}", "role": "primary"}],
        )

    async def handles(query: str, headers: dict[str, str] = HQ_ADMIN) -> list[str]:
        response = await inventory.client.get(f"/accounts?{query}", headers=headers)
        assert response.status_code == 200, response.text
        return [a["handle"] for a in response.json()["items"]]

    assert await handles("district_id=fr") == ["orangefrance", "orange_fr", "orange_paris", "sosh"]
    assert await handles("district_id=fr&platform=x&q=orange") == ["orange_fr", "orange_paris"]
    assert await handles("owner=owner-de") == ["orange_de"]
    assert await handles("status=official") == []
    assert await handles("q=paris") == ["orange_paris"]
    assert await handles("", FR_MANAGER) == ["orangefrance", "orange_fr", "orange_paris", "sosh"]
    hidden = await inventory.client.get("/accounts?district_id=de", headers=FR_MANAGER)
    assert hidden.status_code == 404  # another district does not exist for them
    seen: list[str] = []
    cursor = ""
    while True:
        page = (await inventory.client.get(f"/accounts?limit=2{cursor}", headers=HQ_ADMIN)).json()
        seen += [a["handle"] for a in page["items"]]
        if not page["next_cursor"]:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert seen == ["orangefrance", "orange_de", "orange_fr", "orange_paris", "sosh"]


async def test_presence_summary_counts_what_the_caller_sees(inventory: RunningService) -> None:
    a = await register_account(inventory, platform="x", handle="orange_fr", district_id="fr")
    await register_account(inventory, platform="x", handle="orange_paris", district_id="fr-paris")
    await register_account(inventory, platform="instagram", handle="orange_de", district_id="de")
    await inventory.client.post(
        f"/accounts/{a['id']}/status", json={"status": "official"}, headers=HQ_ADMIN
    )
    everything = (await inventory.client.get("/accounts/summary", headers=HQ_ADMIN)).json()
    assert everything["total"] == 3
    assert everything["by_platform"] == {"x": 2, "instagram": 1}
    assert everything["by_status"] == {"official": 1, "pending": 2}
    assert everything["by_district"] == {"fr": 1, "fr-paris": 1, "de": 1}
    french = (await inventory.client.get("/accounts/summary", headers=FR_MANAGER)).json()
    assert french["total"] == 2
    assert "de" not in french["by_district"]


async def test_platforms_are_listed(inventory: RunningService) -> None:
    response = await inventory.client.get("/platforms", headers=FR_VIEWER)
    keys = [p["key"] for p in response.json()]
    assert keys == sorted(
        [
            "facebook",
            "instagram",
            "x",
            "linkedin",
            "youtube",
            "tiktok",
            "pinterest",
            "threads",
            "bluesky",
            "mastodon",
        ]
    )


async def test_concurrent_registrations_of_one_handle_give_one_account_and_a_409(
    inventory: RunningService,
) -> None:
    import asyncio

    body = {"platform": "x", "handle": "race_me", "district_id": "fr"}
    responses = await asyncio.gather(
        *(inventory.client.post("/accounts", json=body, headers=HQ_ADMIN) for _ in range(5))
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409, 409]
    count = await inventory.scalar("SELECT count(*) FROM accounts WHERE handle_key = 'race_me'")
    assert count == 1


async def test_the_409_names_the_existing_account_only_to_those_who_see_it(
    inventory: RunningService,
) -> None:
    german = await register_account(inventory, platform="x", handle="orange_de", district_id="de")
    body = {"platform": "x", "handle": "Orange_DE", "district_id": "fr"}
    hidden = await inventory.client.post("/accounts", json=body, headers=FR_MANAGER)
    assert hidden.status_code == 409
    assert "existing_account_id" not in hidden.json()
    shown = await inventory.client.post("/accounts", json=body, headers=HQ_ADMIN)
    assert shown.json()["existing_account_id"] == german["id"]


async def test_a_notes_only_change_is_audited_and_versioned(inventory: RunningService) -> None:
    account = await register_account(
        inventory, platform="x", handle="orange_notes", district_id="fr"
    )
    url = f"/accounts/{account['id']}"
    updated = await inventory.client.patch(url, json={"notes": "handover"}, headers=FR_MANAGER)
    assert updated.json()["version"] == 2
    trail = (await inventory.client.get(f"{url}/audit", headers=FR_MANAGER)).json()["items"]
    assert trail[-1]["changes"] == {"notes": [None, "handover"]}
    [event] = await inventory.events("chorus.inventory.account.updated")
    assert event["data"]["changed"] == ["notes"]
    assert "notes" not in {k for k in event["data"] if k != "changed"}
