"""Blackout periods: declared by a district's manager (the central team company-wide), seen by
the districts they bind, listed by window, lifted; and `clashes`, which posts ask, on its
boundaries (start inclusive, end exclusive) and across the district tree."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chassis.districts import DistrictEvent, DistrictReplica
from services.calendar.blackouts.repository import clashes
from services.calendar.models import Blackout, districts
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

START = datetime(2027, 5, 1, 22, 0, tzinfo=UTC)
END = datetime(2027, 5, 3, 6, 0, tzinfo=UTC)


async def declare(
    service: RunningService,
    district_id: str | None = "fr",
    starts_at: datetime = START,
    ends_at: datetime = END,
    reason: str = "Election weekend",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    response = await service.client.post(
        "/blackouts",
        json={
            "district_id": district_id,
            "starts_at": starts_at.isoformat(),
            "ends_at": ends_at.isoformat(),
            "reason": reason,
        },
        headers=headers or (CENTRAL if district_id is None else FR_MANAGER),
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def test_a_manager_declares_a_blackout(calendar: RunningService) -> None:
    paris_time = "2027-05-02T00:00:00+02:00"
    response = await calendar.client.post(
        "/blackouts",
        json={
            "district_id": "fr",
            "starts_at": paris_time,
            "ends_at": "2027-05-03T08:00:00+02:00",
            "reason": "Election weekend",
        },
        headers=FR_MANAGER,
    )
    assert response.status_code == 201, response.text
    blackout = response.json()
    assert blackout["district_id"] == "fr"
    assert instant(blackout["starts_at"]) == START
    assert instant(blackout["ends_at"]) == END
    assert blackout["reason"] == "Election weekend"
    assert blackout["created_by"] == "francois"
    assert blackout.pop("posts_put_on_hold") == 0
    async with calendar.sessions() as session:
        stored = await session.get(Blackout, uuid.UUID(blackout["id"]))
    assert stored is not None
    assert (stored.district_id, stored.starts_at, stored.ends_at) == ("fr", START, END)

    for reader in (FR_VIEWER, PARIS_WRITER, CENTRAL):
        fetched = await calendar.client.get(f"/blackouts/{blackout['id']}", headers=reader)
        assert fetched.status_code == 200, fetched.text
        assert fetched.json() == blackout


async def test_who_may_declare_a_blackout(calendar: RunningService) -> None:
    body = {
        "starts_at": START.isoformat(),
        "ends_at": END.isoformat(),
        "reason": "Quiet period",
    }
    for district_id, headers, status in (
        ("fr", FR_WRITER, 403),
        ("fr", FR_VIEWER, 403),
        ("fr-paris", PARIS_WRITER, 403),
        (None, FR_MANAGER, 403),
        ("fr", DE_MANAGER, 404),
        ("nowhere", CENTRAL, 404),
        (None, as_user("nobody"), 403),
    ):
        response = await calendar.client.post(
            "/blackouts", json={**body, "district_id": district_id}, headers=headers
        )
        assert response.status_code == status, (district_id, response.text)
    assert await calendar.scalar("SELECT count(*) FROM blackouts") == 0
    company = await declare(calendar, None)
    assert company["district_id"] is None
    below = await declare(calendar, "fr-paris", headers=FR_MANAGER)
    assert below["district_id"] == "fr-paris"


async def test_a_regional_manager_of_another_top_district_is_not_central(
    calendar: RunningService,
) -> None:
    # A second root next to hq (an acquired brand): its regional manager runs it, but only a
    # regional manager of a central district (CHORUS_CENTRAL_DISTRICTS, hq) is company-wide.
    async with calendar.sessions.begin() as session:
        await DistrictReplica(districts).apply(
            session,
            DistrictEvent(id="brandco", name="BrandCo", kind="region", path="brandco"),
        )
    brandco_regional = as_user("rita", brandco="regional_manager")
    body = {"starts_at": START.isoformat(), "ends_at": END.isoformat(), "reason": "Our launch"}
    refused = await calendar.client.post(
        "/blackouts", json={**body, "district_id": None}, headers=brandco_regional
    )
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert await calendar.scalar("SELECT count(*) FROM blackouts") == 0
    # Their own tree is theirs to manage.
    own = await declare(calendar, "brandco", headers=brandco_regional)
    assert own["district_id"] == "brandco"


@pytest.mark.parametrize(
    "change",
    [
        {"starts_at": "2027-05-01T22:00:00"},
        {"ends_at": START.isoformat()},
        {"ends_at": (START - timedelta(hours=1)).isoformat()},
        {"ends_at": (START + timedelta(days=366, seconds=1)).isoformat()},
        {"reason": ""},
        {"reason": "r" * 501},
        {"district_id": "FR"},
        {"colour": "red"},
    ],
)
async def test_invalid_blackouts_are_422(calendar: RunningService, change: dict[str, Any]) -> None:
    body = {
        "district_id": "fr",
        "starts_at": START.isoformat(),
        "ends_at": END.isoformat(),
        "reason": "Quiet period",
        **change,
    }
    response = await calendar.client.post("/blackouts", json=body, headers=FR_MANAGER)
    assert response.status_code == 422, response.text
    assert await calendar.scalar("SELECT count(*) FROM blackouts") == 0


async def test_a_year_long_blackout_is_allowed(calendar: RunningService) -> None:
    blackout = await declare(calendar, ends_at=START + timedelta(days=366))
    assert instant(blackout["ends_at"]) - instant(blackout["starts_at"]) == timedelta(days=366)


async def test_list_the_blackouts_binding_a_district(calendar: RunningService) -> None:
    company = await declare(calendar, None, START - timedelta(days=1), START, "Results day")
    fr = await declare(calendar, "fr")
    paris = await declare(calendar, "fr-paris", START + timedelta(hours=1), END, "Marathon")
    de = await declare(calendar, "de", headers=DE_MANAGER)

    async def listed(headers: dict[str, str], **params: str) -> list[str]:
        response = await calendar.client.get("/blackouts", params=params, headers=headers)
        assert response.status_code == 200, response.text
        return [b["id"] for b in response.json()["items"]]

    assert await listed(PARIS_WRITER, district_id="fr-paris") == [
        company["id"],
        fr["id"],
        paris["id"],
    ]
    assert await listed(FR_VIEWER, district_id="fr") == [company["id"], fr["id"]]
    assert await listed(DE_MANAGER, district_id="de") == [company["id"], de["id"]]
    assert await listed(FR_VIEWER) == [company["id"]]
    assert await listed(as_user("nobody")) == []

    # The window [from, to) keeps the blackouts overlapping it.
    assert await listed(PARIS_WRITER, district_id="fr-paris", **{"from": START.isoformat()}) == [
        fr["id"],
        paris["id"],
    ]
    assert await listed(
        PARIS_WRITER,
        district_id="fr-paris",
        **{"to": (START + timedelta(hours=1)).isoformat()},
    ) == [company["id"], fr["id"]]
    assert (
        await listed(
            PARIS_WRITER,
            district_id="fr-paris",
            **{"from": END.isoformat(), "to": (END + timedelta(days=1)).isoformat()},
        )
        == []
    )

    foreign = await calendar.client.get(
        "/blackouts", params={"district_id": "de"}, headers=FR_MANAGER
    )
    assert foreign.status_code == 404
    backwards = await calendar.client.get(
        "/blackouts",
        params={"district_id": "fr", "from": END.isoformat(), "to": START.isoformat()},
        headers=FR_MANAGER,
    )
    assert backwards.status_code == 422
    assert backwards.json()["type"].endswith("/invalid-window")
    naive = await calendar.client.get(
        "/blackouts", params={"from": "2027-05-01T00:00:00"}, headers=FR_MANAGER
    )
    assert naive.status_code == 422


async def test_blackouts_are_paginated(calendar: RunningService) -> None:
    made = [
        (await declare(calendar, "fr", START + timedelta(days=i), END + timedelta(days=i)))["id"]
        for i in (3, 1, 4, 0, 2)
    ]
    expected = [made[3], made[1], made[4], made[0], made[2]]
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params: dict[str, Any] = {"district_id": "fr", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await calendar.client.get("/blackouts", params=params, headers=FR_VIEWER)).json()
        seen += [b["id"] for b in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == expected


async def test_a_foreign_districts_blackout_is_404(calendar: RunningService) -> None:
    fr = await declare(calendar, "fr")
    paris = await declare(calendar, "fr-paris")
    for blackout_id in (fr["id"], paris["id"]):
        for method in ("GET", "DELETE"):
            response = await calendar.client.request(
                method, f"/blackouts/{blackout_id}", headers=DE_MANAGER
            )
            assert response.status_code == 404
            assert response.json()["type"].endswith("/blackout-not-found")
    assert (
        await calendar.client.get(f"/blackouts/{uuid.uuid4()}", headers=CENTRAL)
    ).status_code == 404
    assert await calendar.scalar("SELECT count(*) FROM blackouts") == 2


async def test_lift_a_blackout(calendar: RunningService) -> None:
    fr = await declare(calendar, "fr")
    url = f"/blackouts/{fr['id']}"
    assert (await calendar.client.delete(url, headers=FR_WRITER)).status_code == 403
    assert (await calendar.client.delete(url, headers=PARIS_WRITER)).status_code == 403
    lifted = await calendar.client.delete(url, headers=FR_MANAGER)
    assert lifted.status_code == 204
    assert lifted.content == b""
    assert (await calendar.client.get(url, headers=FR_MANAGER)).status_code == 404
    assert await calendar.scalar("SELECT count(*) FROM blackouts") == 0

    company = await declare(calendar, None)
    url = f"/blackouts/{company['id']}"
    assert (await calendar.client.delete(url, headers=FR_MANAGER)).status_code == 403
    assert (await calendar.client.delete(url, headers=CENTRAL)).status_code == 204


async def test_clashes_boundaries_and_tree(calendar: RunningService) -> None:
    fr = await declare(calendar, "fr")
    company = await declare(calendar, None, END, END + timedelta(hours=2), "Results")
    await declare(calendar, "de", headers=DE_MANAGER)
    tick = timedelta(microseconds=1)

    async def ids(path: str | None, at: datetime) -> list[str]:
        async with calendar.sessions() as session:
            return [str(b.id) for b in await clashes(session, path, at)]

    paris = "hq.fr.fr-paris"
    assert await ids(paris, START - tick) == []
    assert await ids(paris, START) == [fr["id"]]
    assert await ids(paris, END - tick) == [fr["id"]]
    # fr's period ends where the company's begins: never both, never a gap.
    assert await ids(paris, END) == [company["id"]]
    assert await ids(paris, END + timedelta(hours=2) - tick) == [company["id"]]
    assert await ids(paris, END + timedelta(hours=2)) == []
    # The district's own and the company's; not a sibling's; the company-wide calendar
    # only the company's.
    assert await ids("hq.fr", START) == [fr["id"]]
    assert await ids("hq", START) == []
    assert await ids(None, START) == []
    assert await ids(None, END) == [company["id"]]
    de = await ids("hq.de", START)
    assert len(de) == 1
    assert de != [fr["id"]]
    # A time in another zone is the same instant.
    assert await ids(paris, datetime.fromisoformat("2027-05-02T00:00:00+02:00")) == [fr["id"]]

    overlapping = await declare(calendar, "fr-paris", START, START + timedelta(hours=1))
    # Same start: by id, as PostgreSQL orders uuids (their hex text orders the same).
    assert await ids(paris, START) == sorted([fr["id"], overlapping["id"]])


@pytest.mark.parametrize(
    ("starts_at", "ends_at"),
    [
        ("0001-01-01T00:30:00+01:00", "0001-01-02T00:00:00Z"),
        ("0001-01-01T00:00:00Z", "0001-01-02T00:00:00Z"),
        ("9999-12-30T00:00:00Z", "9999-12-31T23:59:59-01:00"),
    ],
)
async def test_a_time_outside_the_years_planned_is_422(
    calendar: RunningService, starts_at: str, ends_at: str
) -> None:
    body = {"district_id": "fr", "starts_at": starts_at, "ends_at": ends_at, "reason": "Far"}
    response = await calendar.client.post("/blackouts", json=body, headers=FR_MANAGER)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    params = {"district_id": "fr", "from": starts_at, "to": ends_at}
    response = await calendar.client.get("/blackouts", params=params, headers=FR_VIEWER)
    assert response.status_code == 422, response.text
    assert await calendar.scalar("SELECT count(*) FROM blackouts") == 0
