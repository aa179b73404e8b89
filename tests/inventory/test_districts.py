"""The district tree: creation rules, visibility by subtree, rename and move."""

from __future__ import annotations

import pytest

from tests.inventory.factories import HQ_ADMIN
from tests.kit import RunningService, as_user

pytestmark = pytest.mark.asyncio

FR_MANAGER = as_user("francois", fr="district_manager")


async def test_a_top_level_region_needs_a_regional_manager_grant_on_it(
    inventory: RunningService,
) -> None:
    body = {"id": "apac", "name": "Asia Pacific", "kind": "region"}
    refused = await inventory.client.post("/districts", json=body, headers=FR_MANAGER)
    assert refused.status_code == 403
    allowed = await inventory.client.post(
        "/districts", json=body, headers=as_user("ann", apac="regional_manager")
    )
    assert allowed.status_code == 201
    assert allowed.json()["path"] == "apac"


async def test_child_paths_kinds_and_duplicates(inventory: RunningService) -> None:
    paris = await inventory.client.get("/districts/fr-paris", headers=HQ_ADMIN)
    assert paris.json()["path"] == "hq.fr.fr-paris"
    team_over_district = await inventory.client.post(
        "/districts",
        json={"id": "x", "name": "X", "kind": "district", "parent_id": "fr-paris"},
        headers=HQ_ADMIN,
    )
    assert team_over_district.status_code == 422
    assert team_over_district.json()["type"].endswith("/invalid-district-tree")
    again = await inventory.client.post(
        "/districts",
        json={"id": "fr", "name": "F", "kind": "district", "parent_id": "hq"},
        headers=HQ_ADMIN,
    )
    assert again.status_code == 409
    bad_id = await inventory.client.post(
        "/districts",
        json={"id": "Not A Slug", "name": "F", "kind": "team", "parent_id": "fr"},
        headers=HQ_ADMIN,
    )
    assert bad_id.status_code == 422
    created = await inventory.events("chorus.inventory.district.created")
    assert [e["subject"] for e in created] == ["hq", "fr", "fr-paris", "de"]


async def test_a_district_manager_sees_only_their_subtree(inventory: RunningService) -> None:
    listed = await inventory.client.get("/districts", headers=FR_MANAGER)
    assert [d["id"] for d in listed.json()["items"]] == ["fr", "fr-paris"]
    foreign = await inventory.client.get("/districts/de", headers=FR_MANAGER)
    assert foreign.status_code == 404
    rename_foreign = await inventory.client.patch(
        "/districts/de", json={"name": "Deutschland"}, headers=FR_MANAGER
    )
    assert rename_foreign.status_code == 404
    everything = await inventory.client.get("/districts", headers=HQ_ADMIN)
    assert [d["id"] for d in everything.json()["items"]] == ["hq", "de", "fr", "fr-paris"]


async def test_listing_pages_with_a_cursor(inventory: RunningService) -> None:
    first = await inventory.client.get("/districts?limit=3", headers=HQ_ADMIN)
    assert len(first.json()["items"]) == 3
    cursor = first.json()["next_cursor"]
    second = await inventory.client.get(f"/districts?limit=3&cursor={cursor}", headers=HQ_ADMIN)
    assert [d["id"] for d in second.json()["items"]] == ["fr-paris"]
    assert second.json()["next_cursor"] is None
    garbage = await inventory.client.get("/districts?cursor=%%%", headers=HQ_ADMIN)
    assert garbage.status_code == 400


async def test_rename_keeps_the_id_and_is_audited_and_published(
    inventory: RunningService,
) -> None:
    renamed = await inventory.client.patch(
        "/districts/fr", json={"name": "France & Monaco"}, headers=FR_MANAGER
    )
    assert renamed.status_code == 200
    assert renamed.json()["id"] == "fr"
    assert renamed.json()["name"] == "France & Monaco"
    [event] = await inventory.events("chorus.inventory.district.renamed")
    assert event["data"]["previous_name"] == "France"
    viewer = as_user("v", fr="viewer")
    assert (
        await inventory.client.patch("/districts/fr", json={"name": "N"}, headers=viewer)
    ).status_code == 403


async def test_move_carries_the_subtree(inventory: RunningService) -> None:
    moved = await inventory.client.post(
        "/districts/fr-paris/move", json={"parent_id": "de"}, headers=HQ_ADMIN
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["path"] == "hq.de.fr-paris"
    assert moved.json()["parent_id"] == "de"
    [event] = await inventory.events("chorus.inventory.district.moved")
    assert event["data"]["previous_path"] == "hq.fr.fr-paris"
    # The French manager no longer sees Paris; moving a district into its own subtree fails.
    assert (
        await inventory.client.get("/districts/fr-paris", headers=FR_MANAGER)
    ).status_code == 404
    loop = await inventory.client.post(
        "/districts/hq/move", json={"parent_id": "de"}, headers=HQ_ADMIN
    )
    assert loop.status_code == 422


async def test_moving_a_whole_branch_updates_every_path(inventory: RunningService) -> None:
    await inventory.client.post(
        "/districts",
        json={"id": "emea", "name": "EMEA", "kind": "region", "parent_id": "hq"},
        headers=HQ_ADMIN,
    )
    moved = await inventory.client.post(
        "/districts/fr/move", json={"parent_id": "emea"}, headers=HQ_ADMIN
    )
    assert moved.status_code == 200
    paris = await inventory.client.get("/districts/fr-paris", headers=HQ_ADMIN)
    assert paris.json()["path"] == "hq.emea.fr.fr-paris"
    # A manager of fr alone cannot move it: they do not manage the destination.
    refused = await inventory.client.post(
        "/districts/fr/move", json={"parent_id": "de"}, headers=FR_MANAGER
    )
    assert refused.status_code == 404  # de is not even visible to them
