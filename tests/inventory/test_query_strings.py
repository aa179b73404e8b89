"""Inventory's lists read query strings as the chassis does (chassis.query): a parameter a route
does not take is refused rather than ignored, and a list filter takes repeated and
comma-separated values alike."""

from __future__ import annotations

import pytest

from tests.inventory.factories import HQ_ADMIN, register_account, report_found_page, set_status
from tests.kit import RunningService

pytestmark = pytest.mark.asyncio


async def test_the_district_filter_is_district_id_and_the_old_name_is_refused(
    inventory: RunningService,
) -> None:
    await register_account(inventory, platform="x", handle="orange_fr", district_id="fr")
    await register_account(inventory, platform="x", handle="orange_de", district_id="de")
    response = await inventory.client.get("/accounts?district=fr", headers=HQ_ADMIN)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "https://chorus.dev/problems/unknown-query-parameter"
    assert body["unknown_parameters"] == ["district"]
    assert "district_id" in body["accepted_parameters"]
    assert "district" not in body["accepted_parameters"]
    assert {"limit", "cursor", "status", "q"} <= set(body["accepted_parameters"])
    assert "items" not in body
    french = await inventory.client.get("/accounts?district_id=fr", headers=HQ_ADMIN)
    assert french.status_code == 200, french.text
    assert [a["handle"] for a in french.json()["items"]] == ["orange_fr"]


@pytest.mark.parametrize(
    "path",
    [
        "/accounts",
        "/accounts/summary",
        "/accounts/export",
        "/account-requests",
        "/takedowns",
    ],
)
async def test_every_district_filter_is_named_district_id(
    inventory: RunningService, path: str
) -> None:
    old_name = await inventory.client.get(f"{path}?district=fr", headers=HQ_ADMIN)
    assert old_name.status_code == 422, old_name.text
    assert old_name.json()["unknown_parameters"] == ["district"]
    assert "district_id" in old_name.json()["accepted_parameters"]
    # The same filter as calendar's and approvals': another district's subtree is 404 to
    # a caller who cannot see it, and an id that breaks the pattern is 422.
    assert (await inventory.client.get(f"{path}?district_id=fr", headers=HQ_ADMIN)).is_success
    invalid = await inventory.client.get(f"{path}?district_id=FR!", headers=HQ_ADMIN)
    assert invalid.status_code == 422, invalid.text
    assert invalid.json()["errors"][0]["loc"][:2] == ["query", "district_id"]


async def test_no_inventory_route_takes_a_district_query_parameter(
    inventory: RunningService,
) -> None:
    """Found by enumerating the OpenAPI document, so a route added later is covered too."""
    document = (await inventory.client.get("/openapi.json")).json()
    district_filters: list[str] = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
            assert "district" not in names, (method, path)
            if "district_id" in names:
                district_filters.append(f"{method.upper()} {path}")
    assert sorted(district_filters) == [
        "GET /account-requests",
        "GET /accounts",
        "GET /accounts/export",
        "GET /accounts/summary",
        "GET /takedowns",
    ]


async def test_the_unknown_query_parameter_comes_before_the_principal_and_the_lookup(
    inventory: RunningService,
) -> None:
    anonymous = await inventory.client.get("/accounts?district=spain")
    assert anonymous.status_code == 422
    missing = await inventory.client.get(
        "/accounts/00000000-0000-0000-0000-000000000000?verbose=1", headers=HQ_ADMIN
    )
    assert missing.status_code == 422
    assert missing.json()["unknown_parameters"] == ["verbose"]


async def test_a_status_filter_takes_commas_repeats_and_both(inventory: RunningService) -> None:
    for handle in ("orange_fr", "orange_paris"):
        account = await register_account(inventory, platform="x", handle=handle, district_id="fr")
    await set_status(inventory, account, status="official", reason="verified")
    rogue = await register_account(inventory, platform="x", handle="orange_fake", district_id="fr")
    await set_status(inventory, rogue, status="rogue", reason="fake")
    await register_account(inventory, platform="x", handle="orange_old", district_id="fr")

    async def handles(query: str) -> list[str]:
        response = await inventory.client.get(f"/accounts?{query}", headers=HQ_ADMIN)
        assert response.status_code == 200, response.text
        return [a["handle"] for a in response.json()["items"]]

    repeated = await handles("status=official&status=rogue")
    assert repeated == ["orange_fake", "orange_paris"]
    assert await handles("status=official,rogue") == repeated
    assert await handles("status=official%2Crogue") == repeated
    assert await handles("status=official&status=rogue,official") == repeated
    assert await handles("status=pending") == ["orange_fr", "orange_old"]


async def test_an_invalid_item_in_a_comma_list_is_422(inventory: RunningService) -> None:
    for query in ("status=official,nonsense", "status=official,", "status=official&status=x,y"):
        response = await inventory.client.get(f"/accounts?{query}", headers=HQ_ADMIN)
        assert response.status_code == 422, query
        body = response.json()
        assert body["type"].endswith("/validation-error"), query
        assert body["errors"][0]["loc"][:2] == ["query", "status"], query


async def test_takedown_and_request_statuses_take_commas(inventory: RunningService) -> None:
    await report_found_page(inventory)
    for path, first, second in (
        ("/takedowns", "open", "removed"),
        ("/account-requests", "open", "approved"),
    ):
        repeated = await inventory.client.get(
            f"{path}?status={first}&status={second}", headers=HQ_ADMIN
        )
        commas = await inventory.client.get(f"{path}?status={first},{second}", headers=HQ_ADMIN)
        assert repeated.status_code == commas.status_code == 200, (repeated.text, commas.text)
        assert commas.json() == repeated.json()
        wrong = await inventory.client.get(f"{path}?status={first},bogus", headers=HQ_ADMIN)
        assert wrong.status_code == 422
    [case] = (await inventory.client.get("/takedowns?status=kept,open", headers=HQ_ADMIN)).json()[
        "items"
    ]
    assert case["status"] == "open"
