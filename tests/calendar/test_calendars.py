"""Calendars (the company-wide one and one per district, made when the district arrives or on
first use; users never create one) and campaigns:
who sees and changes what, the applies-to filter, and the campaign a post may use."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from chassis.events import CloudEvent
from chassis.principal import Principal
from services.calendar.access import tree
from services.calendar.accounts.handlers import HANDLERS as INVENTORY_HANDLERS
from services.calendar.calendars.service import CampaignNotUsable, calendar_for, usable_campaign
from services.calendar.models import Calendar
from tests.calendar.factories import (
    CENTRAL,
    DE_MANAGER,
    FR_MANAGER,
    FR_VIEWER,
    FR_WRITER,
    PARIS_WRITER,
)
from tests.kit import RunningService, as_user

pytestmark = pytest.mark.asyncio

NOBODY = as_user("nobody")


async def list_all(
    calendar: RunningService, path: str, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    """Every item of a paginated list, following the cursors."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await calendar.client.get(path, params=query, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


async def calendar_id_of(calendar: RunningService, district_id: str | None) -> str:
    async with calendar.sessions.begin() as session:
        return str((await calendar_for(session, district_id)).id)


async def new_campaign(
    calendar: RunningService, headers: dict[str, str] = FR_MANAGER, **body: Any
) -> dict[str, Any]:
    payload = {
        "district_id": "fr",
        "name": "Spring launch",
        "starts_on": "2027-03-01",
        "ends_on": "2027-03-31",
        **body,
    }
    response = await calendar.client.post("/campaigns", json=payload, headers=headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def scope_principal(user: str, **grants: str) -> Principal:
    return Principal(
        sub=user,
        grants={d: frozenset({r}) for d, r in grants.items()},
        exp=int(time.time()) + 60,
    )


# Calendars -------------------------------------------------------------------------------


async def test_a_district_manager_lists_the_company_calendar_and_their_subtree(
    calendar: RunningService,
) -> None:
    items = await list_all(calendar, "/calendars", FR_MANAGER)

    assert [(c["district_id"], c["name"]) for c in items] == [
        (None, "Company-wide"),
        ("fr", "France"),
        ("fr-paris", "Paris"),
    ]
    # Made on first use, one row per district, and listing again makes no more.
    await list_all(calendar, "/calendars", FR_MANAGER)
    assert await calendar.scalar("SELECT count(*) FROM calendars") == 3
    de_items = await list_all(calendar, "/calendars", DE_MANAGER)
    assert [c["district_id"] for c in de_items] == [None, "de"]


async def test_the_central_team_lists_every_calendar_in_tree_order_across_pages(
    calendar: RunningService,
) -> None:
    pages = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        response = await calendar.client.get("/calendars", params=params, headers=CENTRAL)
        assert response.status_code == 200, response.text
        pages.append([c["district_id"] for c in response.json()["items"]])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break

    assert pages == [[None, "hq"], ["de", "fr"], ["fr-paris"]]


async def test_a_caller_without_grants_sees_no_calendar(calendar: RunningService) -> None:
    response = await calendar.client.get("/calendars", headers=NOBODY)
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}
    company = await calendar_id_of(calendar, None)
    response = await calendar.client.get(f"/calendars/{company}", headers=NOBODY)
    assert response.status_code == 404


async def test_another_districts_calendar_is_not_found(calendar: RunningService) -> None:
    fr = await calendar_id_of(calendar, "fr")
    paris = await calendar_id_of(calendar, "fr-paris")
    company = await calendar_id_of(calendar, None)

    response = await calendar.client.get(f"/calendars/{fr}", headers=DE_MANAGER)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/calendar-not-found")
    # Reading a district covers those below it, not those above it.
    assert (await calendar.client.get(f"/calendars/{paris}", headers=FR_VIEWER)).status_code == 200
    assert (await calendar.client.get(f"/calendars/{fr}", headers=PARIS_WRITER)).status_code == 404
    response = await calendar.client.get(f"/calendars/{company}", headers=DE_MANAGER)
    assert response.status_code == 200
    assert response.json()["district_id"] is None
    missing = await calendar.client.get(f"/calendars/{uuid.uuid4()}", headers=CENTRAL)
    assert missing.status_code == 404


async def test_renaming_a_calendar_needs_its_manager(calendar: RunningService) -> None:
    fr = await calendar_id_of(calendar, "fr")
    company = await calendar_id_of(calendar, None)

    by_viewer = await calendar.client.patch(
        f"/calendars/{fr}", json={"name": "Nope"}, headers=FR_VIEWER
    )
    assert by_viewer.status_code == 403
    by_other = await calendar.client.patch(
        f"/calendars/{fr}", json={"name": "Nope"}, headers=DE_MANAGER
    )
    assert by_other.status_code == 404
    renamed = await calendar.client.patch(
        f"/calendars/{fr}", json={"name": "France editorial"}, headers=FR_MANAGER
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "France editorial"
    assert (
        await calendar.scalar("SELECT name FROM calendars WHERE id = :id", id=fr)
        == "France editorial"
    )

    company_by_district = await calendar.client.patch(
        f"/calendars/{company}", json={"name": "Nope"}, headers=FR_MANAGER
    )
    assert company_by_district.status_code == 403
    company_by_central = await calendar.client.patch(
        f"/calendars/{company}", json={"name": "Group calendar"}, headers=CENTRAL
    )
    assert company_by_central.status_code == 200
    assert company_by_central.json()["name"] == "Group calendar"
    empty = await calendar.client.patch(f"/calendars/{fr}", json={"name": ""}, headers=CENTRAL)
    assert empty.status_code == 422


async def test_calendar_for_makes_one_calendar_per_district(calendar: RunningService) -> None:
    async with calendar.sessions.begin() as session:
        first = await calendar_for(session, "fr-paris")
        again = await calendar_for(session, "fr-paris")
        company = await calendar_for(session, None)
    assert first.id == again.id
    assert (first.district_id, first.name) == ("fr-paris", "Paris")
    assert company.district_id is None
    async with calendar.sessions() as session:
        count = await session.scalar(
            select(func.count()).select_from(Calendar).where(Calendar.district_id == "fr-paris")
        )
    assert count == 1


# Campaigns -------------------------------------------------------------------------------


async def test_a_district_manager_creates_reads_and_changes_a_campaign(
    calendar: RunningService,
) -> None:
    created = await new_campaign(
        calendar,
        description="New collection",
        goals=[{"kpi": "engagement_rate", "target": 0.04, "note": "above last spring"}],
        tags=["spring", "launch", "spring"],
    )
    assert created["district_id"] == "fr"
    assert created["created_by"] == "francois"
    assert created["goals"] == [
        {"kpi": "engagement_rate", "target": 0.04, "note": "above last spring"}
    ]
    assert created["tags"] == ["spring", "launch"]

    read = await calendar.client.get(f"/campaigns/{created['id']}", headers=PARIS_WRITER)
    assert read.status_code == 200  # fr's campaigns reach fr-paris
    read = await calendar.client.get(f"/campaigns/{created['id']}", headers=FR_VIEWER)
    assert read.status_code == 200
    assert read.json() == created

    changed = await calendar.client.patch(
        f"/campaigns/{created['id']}",
        json={"ends_on": "2027-04-15", "description": None, "tags": ["spring"]},
        headers=FR_MANAGER,
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["starts_on"], body["ends_on"]) == ("2027-03-01", "2027-04-15")
    assert body["description"] is None
    assert body["tags"] == ["spring"]
    assert body["name"] == "Spring launch"
    assert body["updated_at"] >= created["updated_at"]
    stored = await calendar.scalar(
        "SELECT ends_on::text FROM campaigns WHERE id = :id", id=created["id"]
    )
    assert stored == "2027-04-15"


async def test_campaign_permissions(calendar: RunningService) -> None:
    base = {"name": "X", "starts_on": "2027-01-01", "ends_on": "2027-01-02"}

    by_writer = await calendar.client.post(
        "/campaigns", json={**base, "district_id": "fr"}, headers=FR_WRITER
    )
    assert by_writer.status_code == 403
    by_other = await calendar.client.post(
        "/campaigns", json={**base, "district_id": "fr"}, headers=DE_MANAGER
    )
    assert by_other.status_code == 404
    unknown = await calendar.client.post(
        "/campaigns", json={**base, "district_id": "nowhere"}, headers=CENTRAL
    )
    assert unknown.status_code == 404
    company_by_district = await calendar.client.post(
        "/campaigns", json={**base, "district_id": None}, headers=FR_MANAGER
    )
    assert company_by_district.status_code == 403
    company = await new_campaign(calendar, CENTRAL, district_id=None)
    assert company["district_id"] is None
    assert await calendar.scalar("SELECT count(*) FROM campaigns") == 1

    # Everyone with a grant reads a company-wide campaign; only the central team changes it.
    read = await calendar.client.get(f"/campaigns/{company['id']}", headers=DE_MANAGER)
    assert read.status_code == 200
    change = await calendar.client.patch(
        f"/campaigns/{company['id']}", json={"name": "Y"}, headers=FR_MANAGER
    )
    assert change.status_code == 403

    fr = await new_campaign(calendar)
    foreign = await calendar.client.patch(
        f"/campaigns/{fr['id']}", json={"name": "Y"}, headers=DE_MANAGER
    )
    assert foreign.status_code == 404
    assert foreign.json()["type"].endswith("/campaign-not-found")
    by_viewer = await calendar.client.patch(
        f"/campaigns/{fr['id']}", json={"name": "Y"}, headers=FR_VIEWER
    )
    assert by_viewer.status_code == 403
    assert (
        await calendar.client.get(f"/campaigns/{fr['id']}", headers=DE_MANAGER)
    ).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"starts_on": "2027-03-10", "ends_on": "2027-03-09"},
        {"goals": [{"kpi": "reach", "target": 1}] * 21},
        {"goals": [{"kpi": "reach"}]},
        {"tags": ["a,b"]},
        {"tags": [f"t{n}" for n in range(21)]},
        {"name": ""},
        {"name": "x" * 201},
        {"ends_on": "not a date"},
        {"owner": "someone"},
    ],
)
async def test_a_campaign_that_breaks_the_rules_is_refused(
    calendar: RunningService, body: dict[str, Any]
) -> None:
    payload = {"district_id": "fr", "name": "X", "starts_on": "2027-03-01", "ends_on": "2027-03-31"}
    response = await calendar.client.post(
        "/campaigns", json={**payload, **body}, headers=FR_MANAGER
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert await calendar.scalar("SELECT count(*) FROM campaigns") == 0


async def test_a_change_that_would_reverse_the_dates_is_refused(calendar: RunningService) -> None:
    created = await new_campaign(calendar)
    response = await calendar.client.patch(
        f"/campaigns/{created['id']}", json={"starts_on": "2027-04-01"}, headers=FR_MANAGER
    )
    assert response.status_code == 422
    assert response.json()["type"].endswith("/invalid-campaign-dates")
    stored = await calendar.scalar(
        "SELECT starts_on::text FROM campaigns WHERE id = :id", id=created["id"]
    )
    assert stored == "2027-03-01"


async def test_campaigns_that_apply_to_a_district(calendar: RunningService) -> None:
    company = await new_campaign(calendar, CENTRAL, district_id=None, name="company")
    hq = await new_campaign(calendar, CENTRAL, district_id="hq", name="hq")
    fr = await new_campaign(calendar, name="fr")
    paris = await new_campaign(calendar, district_id="fr-paris", name="paris")
    de = await new_campaign(calendar, DE_MANAGER, district_id="de", name="de")

    def names(items: list[dict[str, Any]]) -> set[str]:
        return {c["name"] for c in items}

    central_paris = await list_all(calendar, "/campaigns", CENTRAL, district_id="fr-paris")
    assert names(central_paris) == {"company", "hq", "fr", "paris"}
    central_fr = await list_all(calendar, "/campaigns", CENTRAL, district_id="fr")
    assert names(central_fr) == {"company", "hq", "fr"}
    # A region's campaigns reach its districts; a sibling's do not.
    fr_paris = await list_all(calendar, "/campaigns", FR_MANAGER, district_id="fr-paris")
    assert names(fr_paris) == {"company", "hq", "fr", "paris"}
    everything_fr = await list_all(calendar, "/campaigns", FR_MANAGER)
    assert names(everything_fr) == {"company", "hq", "fr", "paris"}
    assert names(await list_all(calendar, "/campaigns", DE_MANAGER)) == {"company", "hq", "de"}
    foreign = await calendar.client.get(
        "/campaigns", params={"district_id": "de"}, headers=FR_MANAGER
    )
    assert foreign.status_code == 404
    assert {company["id"], hq["id"], fr["id"], paris["id"], de["id"]} == {
        c["id"] for c in await list_all(calendar, "/campaigns", CENTRAL)
    }


async def test_campaigns_by_day_and_tag_across_pages(calendar: RunningService) -> None:
    for month in range(1, 8):
        await new_campaign(
            calendar,
            name=f"m{month}",
            starts_on=f"2027-{month:02d}-01",
            ends_on=f"2027-{month:02d}-20",
            tags=["even"] if month % 2 == 0 else ["odd"],
        )

    pages = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        response = await calendar.client.get("/campaigns", params=params, headers=FR_VIEWER)
        assert response.status_code == 200, response.text
        pages.append([c["name"] for c in response.json()["items"]])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
    assert pages == [["m7", "m6", "m5"], ["m4", "m3", "m2"], ["m1"]]

    active = await list_all(calendar, "/campaigns", FR_VIEWER, active_on="2027-03-20")
    assert [c["name"] for c in active] == ["m3"]
    assert await list_all(calendar, "/campaigns", FR_VIEWER, active_on="2027-03-21") == []
    even = await list_all(calendar, "/campaigns", FR_VIEWER, tag="even")
    assert [c["name"] for c in even] == ["m6", "m4", "m2"]
    bad = await calendar.client.get("/campaigns", params={"cursor": "nope"}, headers=FR_VIEWER)
    assert bad.status_code == 400


async def test_usable_campaign_refuses_what_the_post_may_not_use(
    calendar: RunningService,
) -> None:
    company = uuid.UUID((await new_campaign(calendar, CENTRAL, district_id=None))["id"])
    fr = uuid.UUID((await new_campaign(calendar))["id"])
    paris = uuid.UUID((await new_campaign(calendar, district_id="fr-paris"))["id"])
    de = uuid.UUID((await new_campaign(calendar, DE_MANAGER, district_id="de"))["id"])

    async with calendar.sessions.begin() as session:
        writer = await tree.scope_of(session, scope_principal("fanny", fr="contributor"))
        central = await tree.scope_of(session, scope_principal("regina", hq="regional_manager"))
        # Company-wide campaigns go on every post; a district's on its own and those below.
        assert (await usable_campaign(session, writer, "hq.fr", company)).id == company
        assert (await usable_campaign(session, writer, "hq.fr.fr-paris", fr)).id == fr
        assert (await usable_campaign(session, central, None, company)).id == company

        refusals = [
            (writer, "hq.fr", paris, "other_district"),  # below the post's district
            (writer, None, fr, "other_district"),  # a company-wide post
            (writer, "hq.fr", de, "unknown"),  # not visible to the caller
            (central, "hq.fr", de, "other_district"),  # visible, but elsewhere
            (writer, "hq.fr", uuid.uuid4(), "unknown"),
        ]
        for scope, post_path, campaign_id, reason in refusals:
            with pytest.raises(CampaignNotUsable) as refused:
                await usable_campaign(session, scope, post_path, campaign_id)
            assert refused.value.status == 422
            assert refused.value.extensions["reason"] == reason, (post_path, campaign_id)
            if reason == "unknown":
                # Nothing tells an invisible campaign from one that does not exist.
                assert refused.value.detail == f"Unknown campaign {campaign_id}."


async def test_users_do_not_create_calendars(calendar: RunningService) -> None:
    """POST /calendars is a problem+json 405 that says why, with the methods allowed."""
    response = await calendar.client.post("/calendars", json={"name": "Brand X"}, headers=CENTRAL)
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["allow"] == "GET"
    body = response.json()
    assert body["type"].endswith("/calendars-are-not-created")
    assert "each district has exactly one calendar" in body["detail"]
    assert "campaigns" in body["detail"]
    assert await calendar.scalar("SELECT count(*) FROM calendars WHERE name = 'Brand X'") == 0

    document = (await calendar.client.get("/openapi.json")).json()
    described = document["paths"]["/calendars"]
    assert "Calendars are not created by users" in described["get"]["description"]
    assert "405" in described["post"]["responses"]


async def test_a_district_gets_its_calendar_when_it_arrives(calendar: RunningService) -> None:
    """inventory's district.created, as the consumer applies it, makes the district's one
    calendar at once; a replay makes no second one."""
    event = CloudEvent(
        source="/services/inventory",
        type="chorus.inventory.district.created",
        subject="fr-lyon",
        data={
            "id": "fr-lyon",
            "name": "Lyon",
            "kind": "team",
            "parent_id": "fr",
            "path": "hq.fr.fr-lyon",
        },
    )
    for _ in range(2):
        async with calendar.sessions.begin() as session:
            await INVENTORY_HANDLERS[event.type](session, event)
    made = await calendar.scalar(
        "SELECT count(*) || '/' || min(name) FROM calendars WHERE district_id = 'fr-lyon'"
    )
    assert made == "1/Lyon"
