"""Crafted cursors on every list of inventory: each is parsed by the chassis's cursor parser
(`chassis.pagination.cursor_key`), so a cursor this API did not issue is a 400 problem, never a
500 from the database (a NUL in text, an integer past bigint, a path that is no ltree)."""

from __future__ import annotations

from typing import Any

import pytest

from chassis.pagination import encode_cursor
from tests.inventory.factories import HQ_ADMIN
from tests.kit import RunningService

pytestmark = pytest.mark.asyncio


async def assert_invalid_cursor(service: RunningService, path: str, key: list[Any]) -> None:
    response = await service.client.get(
        path, params={"cursor": encode_cursor(key)}, headers=HQ_ADMIN
    )
    assert response.status_code == 400, (key, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/invalid-cursor")


async def registered(service: RunningService) -> str:
    response = await service.client.post(
        "/accounts",
        json={"platform": "instagram", "handle": "cursor_test", "district_id": "fr"},
        headers=HQ_ADMIN,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.mark.parametrize(
    "key",
    [
        ["instagram", "a\x00b"],
        ["inst\x00agram", "a"],
        ["instagram"],
        ["instagram", 5],
        ["instagram", None],
    ],
)
async def test_account_cursors(inventory: RunningService, key: list[Any]) -> None:
    await assert_invalid_cursor(inventory, "/accounts", key)


@pytest.mark.parametrize("key", [[2**63], [-(2**63) - 1], [10**30], ["1"], [True], [1.5], []])
async def test_audit_cursors(inventory: RunningService, key: list[Any]) -> None:
    account_id = await registered(inventory)
    await assert_invalid_cursor(inventory, f"/accounts/{account_id}/audit", key)


async def test_an_issued_audit_cursor_still_pages(inventory: RunningService) -> None:
    account_id = await registered(inventory)
    await inventory.client.patch(f"/accounts/{account_id}", json={"notes": "one"}, headers=HQ_ADMIN)
    first = await inventory.client.get(f"/accounts/{account_id}/audit?limit=1", headers=HQ_ADMIN)
    assert first.status_code == 200
    second = await inventory.client.get(
        f"/accounts/{account_id}/audit",
        params={"limit": 1, "cursor": first.json()["next_cursor"]},
        headers=HQ_ADMIN,
    )
    assert second.status_code == 200
    assert [e["action"] for e in second.json()["items"]] == ["updated"]


@pytest.mark.parametrize(
    "key",
    [
        ["not a path"],
        ["hq..fr"],
        ["hq.fr."],
        [".hq"],
        ["hq.fr\x00"],
        ["HQ"],
        ["hq;drop"],
        [""],
        [7],
        ["hq", "fr"],
    ],
)
async def test_district_cursors(inventory: RunningService, key: list[Any]) -> None:
    await assert_invalid_cursor(inventory, "/districts", key)


async def test_an_issued_district_cursor_of_a_deep_path_still_pages(
    inventory: RunningService,
) -> None:
    cursor = encode_cursor(["hq.fr"])
    response = await inventory.client.get("/districts", params={"cursor": cursor}, headers=HQ_ADMIN)
    assert response.status_code == 200
    assert [d["id"] for d in response.json()["items"]] == ["fr-paris"]


@pytest.mark.parametrize(
    "key",
    [
        ["2026-01-01T00:00:00+00:00", "not-a-uuid"],
        ["2026-01-01T00:00:00", "00000000-0000-0000-0000-000000000000"],
        ["99999-01-01T00:00:00+00:00", "00000000-0000-0000-0000-000000000000"],
        ["2026-01-01T00:00:00+00:00\x00", "00000000-0000-0000-0000-000000000000"],
        [1, 2],
    ],
)
async def test_request_and_takedown_cursors(inventory: RunningService, key: list[Any]) -> None:
    await assert_invalid_cursor(inventory, "/account-requests", key)
    await assert_invalid_cursor(inventory, "/takedowns", key)
