"""Factories and shared data of the inventory tests: callers, the district tree every test
starts from, and the objects tests make through the API (small async functions)."""

from __future__ import annotations

from typing import Any

from tests.kit import RunningService, as_user

HQ_ADMIN = as_user("regina", hq="regional_manager")
FR_MANAGER = as_user("francois", fr="district_manager")
DE_MANAGER = as_user("dieter", de="district_manager")
FR_VIEWER = as_user("vera", fr="viewer")

# A small organisation: hq (region) > fr (district) > fr-paris (team); hq > de (district).
DISTRICTS = (
    {"id": "hq", "name": "Headquarters", "kind": "region"},
    {"id": "fr", "name": "France", "kind": "district", "parent_id": "hq"},
    {"id": "fr-paris", "name": "Paris", "kind": "team", "parent_id": "fr"},
    {"id": "de", "name": "Germany", "kind": "district", "parent_id": "hq"},
)


async def seed_districts(service: RunningService) -> None:
    for body in DISTRICTS:
        response = await service.client.post("/districts", json=body, headers=HQ_ADMIN)
        assert response.status_code == 201, response.text


async def register_account(
    service: RunningService, headers: dict[str, str] | None = None, **body: Any
) -> dict[str, Any]:
    """An account registered through the API (as the central team unless `headers` say)."""
    response = await service.client.post("/accounts", json=body, headers=headers or HQ_ADMIN)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def set_status(
    service: RunningService,
    account: dict[str, Any],
    headers: dict[str, str] | None = None,
    **body: Any,
) -> dict[str, Any]:
    """The account moved to another status through the API."""
    response = await service.client.post(
        f"/accounts/{account['id']}/status", json=body, headers=headers or HQ_ADMIN
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


FOUND_PAGE_EVIDENCE = [
    {
        "url": "https://archive.example.org/x.com/orange_fake",
        "note": "Uses our logo and asks followers for card numbers",
        "captured_at": "2026-11-20T09:30:00+01:00",
    },
    {"note": "Reported by three customers to the support desk"},
]


async def report_found_page(
    service: RunningService, headers: dict[str, str] | None = None, **body: Any
) -> dict[str, Any]:
    """A rogue page on x reported in fr with evidence (a district manager of fr reports it
    unless `headers` say), its takedown case opened."""
    payload = {
        "profile_url": "https://x.com/orange_fake",
        "district_id": "fr",
        "classification": "rogue",
        "evidence": FOUND_PAGE_EVIDENCE,
        **body,
    }
    response = await service.client.post(
        "/found-pages", json=payload, headers=headers or FR_MANAGER
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result
