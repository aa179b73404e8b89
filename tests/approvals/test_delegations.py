"""Delegations (out of office): created by the delegator with their grants, validated, refused
to oneself and when overlapping, listed given and received, not revoked by the delegate nor by
strangers; and
`active_delegations_to`, which eligibility asks, on its boundaries."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.approvals.delegations.service import active_delegations_to
from services.approvals.models import ApprovalRequest, Delegation, RequestStep
from tests.approvals.factories import CENTRAL, DE_MANAGER, FR_LEGAL, FR_MANAGER, FR_VIEWER
from tests.kit import RunningService, as_user

pytestmark = pytest.mark.asyncio

DANA = as_user("dana", de="viewer")


def period(
    start: timedelta = -timedelta(hours=1), length: timedelta = timedelta(days=7)
) -> dict[str, str]:
    starts_at = datetime.now(UTC) + start
    return {"starts_at": starts_at.isoformat(), "ends_at": (starts_at + length).isoformat()}


async def delegate(
    service: RunningService,
    headers: dict[str, str] = FR_MANAGER,
    to: str = "dana",
    expect: int = 201,
    **body: Any,
) -> dict[str, Any]:
    response = await service.client.post(
        "/delegations",
        json={"delegate": to, **period(), "reason": "Holidays", **body},
        headers=headers,
    )
    assert response.status_code == expect, response.text
    result: dict[str, Any] = response.json()
    return result


async def listed(
    service: RunningService, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    response = await service.client.get("/delegations", params=params, headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


class TestCreate:
    async def test_the_delegate_gets_the_delegators_roles_for_the_period(
        self, approvals: RunningService
    ) -> None:
        both = as_user("francois", fr=["legal", "district_manager"], de="viewer")
        starts_at = datetime.now(UTC) - timedelta(minutes=5)
        ends_at = starts_at + timedelta(days=90)
        response = await approvals.client.post(
            "/delegations",
            json={
                "delegate": "dana",
                "starts_at": starts_at.isoformat(),
                "ends_at": ends_at.isoformat(),
                "reason": "Parental leave",
            },
            headers=both,
        )
        assert response.status_code == 201, response.text
        created = response.json()
        assert created["delegator"] == "francois"
        assert created["delegate"] == "dana"
        assert created["grants"] == {"de": ["viewer"], "fr": ["district_manager", "legal"]}
        assert datetime.fromisoformat(created["starts_at"]) == starts_at
        assert datetime.fromisoformat(created["ends_at"]) == ends_at
        assert created["reason"] == "Parental leave"
        assert created["status"] == "active"
        assert created["revoked_at"] is None
        async with approvals.sessions() as session:
            stored = await session.get(Delegation, uuid.UUID(created["id"]))
        assert stored is not None
        assert (stored.delegator, stored.delegate, stored.grants) == (
            "francois",
            "dana",
            {"de": ["viewer"], "fr": ["district_manager", "legal"]},
        )

    async def test_a_future_period_is_scheduled(self, approvals: RunningService) -> None:
        created = await delegate(approvals, **period(start=timedelta(days=3)))
        assert created["status"] == "scheduled"
        async with approvals.sessions() as session:
            assert await active_delegations_to(session, "dana", datetime.now(UTC)) == []

    @pytest.mark.parametrize(
        ("change", "problem"),
        [
            ({"starts_at": "2030-05-01T10:00:00"}, "validation-error"),
            ({"ends_at": None}, "validation-error"),
            ({"delegate": ""}, "validation-error"),
            ({"delegate": "x" * 201}, "validation-error"),
            ({"reason": "r" * 501}, "validation-error"),
            ({"role": "legal"}, "validation-error"),
            (period(length=timedelta(0)), "validation-error"),
            (period(length=-timedelta(hours=1)), "validation-error"),
            (period(length=timedelta(days=90, seconds=1)), "validation-error"),
            (period(start=-timedelta(days=3), length=timedelta(days=1)), "delegation-period-over"),
            ({"delegate": "francois"}, "self-delegation"),
        ],
    )
    async def test_invalid_delegations_are_refused(
        self, approvals: RunningService, change: dict[str, Any], problem: str
    ) -> None:
        body = {"delegate": "dana", **period(), "reason": "Holidays", **change}
        response = await approvals.client.post("/delegations", json=body, headers=FR_MANAGER)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("/" + problem)
        assert await approvals.scalar("SELECT count(*) FROM delegations") == 0

    async def test_someone_without_roles_has_nothing_to_delegate(
        self, approvals: RunningService
    ) -> None:
        response = await approvals.client.post(
            "/delegations",
            json={"delegate": "dana", **period()},
            headers=as_user("nobody"),
        )
        assert response.status_code == 422, response.text
        assert response.json()["type"].endswith("/nothing-to-delegate")

    async def test_needs_a_principal(self, approvals: RunningService) -> None:
        response = await approvals.client.post(
            "/delegations", json={"delegate": "dana", **period()}
        )
        assert response.status_code == 401


class TestOverlap:
    async def test_overlapping_periods_to_the_same_delegate_are_refused(
        self, approvals: RunningService
    ) -> None:
        first = await delegate(
            approvals, **period(start=timedelta(days=1), length=timedelta(days=5))
        )
        clash = await delegate(
            approvals, expect=409, **period(start=timedelta(days=5), length=timedelta(days=5))
        )
        assert clash["type"].endswith("/overlapping-delegation")
        assert clash["delegation_id"] == first["id"]
        inside = await delegate(
            approvals, expect=409, **period(start=timedelta(days=2), length=timedelta(hours=1))
        )
        assert inside["delegation_id"] == first["id"]
        assert await approvals.scalar("SELECT count(*) FROM delegations") == 1

    async def test_adjacent_periods_and_other_people_are_fine(
        self, approvals: RunningService
    ) -> None:
        start = datetime.now(UTC) + timedelta(days=1)
        middle = start + timedelta(days=5)
        span = {"starts_at": start.isoformat(), "ends_at": middle.isoformat()}
        await delegate(approvals, **span)
        # Half-open periods: the next one may start exactly when the first ends.
        await delegate(
            approvals,
            starts_at=middle.isoformat(),
            ends_at=(middle + timedelta(days=1)).isoformat(),
        )
        # Another delegate for the same days, and another delegator to the same delegate.
        await delegate(approvals, to="dora", **span)
        await delegate(approvals, headers=FR_LEGAL, **span)
        assert await approvals.scalar("SELECT count(*) FROM delegations") == 4

    async def test_a_revoked_delegation_no_longer_clashes(self, approvals: RunningService) -> None:
        first = await delegate(approvals)
        await delegate(approvals, expect=409)
        revoked = await approvals.client.delete(f"/delegations/{first['id']}", headers=FR_MANAGER)
        assert revoked.status_code == 204
        again = await delegate(approvals)
        assert again["id"] != first["id"]


class TestList:
    async def test_given_and_received_and_nobody_elses(self, approvals: RunningService) -> None:
        given = await delegate(approvals, to="louis")
        received = await delegate(approvals, headers=FR_LEGAL, to="francois")
        others = await delegate(approvals, headers=CENTRAL, to="dana")

        mine = await listed(approvals, FR_MANAGER)
        assert {d["id"] for d in mine} == {given["id"], received["id"]}
        assert [d["id"] for d in await listed(approvals, FR_MANAGER, direction="given")] == [
            given["id"]
        ]
        assert [d["id"] for d in await listed(approvals, FR_MANAGER, direction="received")] == [
            received["id"]
        ]
        assert [d["id"] for d in await listed(approvals, DANA)] == [others["id"]]
        assert await listed(approvals, FR_VIEWER) == []
        bad = await approvals.client.get(
            "/delegations", params={"direction": "sideways"}, headers=FR_MANAGER
        )
        assert bad.status_code == 422

    async def test_pages_latest_period_first(self, approvals: RunningService) -> None:
        created = [
            await delegate(
                approvals, to=f"deputy-{n}", **period(start=timedelta(days=n), length=timedelta(1))
            )
            for n in range(5)
        ]
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            params: dict[str, Any] = {"limit": 2}
            if cursor:
                params["cursor"] = cursor
            response = await approvals.client.get("/delegations", params=params, headers=FR_MANAGER)
            assert response.status_code == 200, response.text
            body = response.json()
            assert len(body["items"]) <= 2
            seen += [d["id"] for d in body["items"]]
            pages += 1
            cursor = body.get("next_cursor")
            if not cursor:
                break
        assert pages == 3
        assert seen == [d["id"] for d in reversed(created)]
        broken = await approvals.client.get(
            "/delegations", params={"cursor": "nonsense"}, headers=FR_MANAGER
        )
        assert broken.status_code == 400

    async def test_revoked_ones_only_on_request(self, approvals: RunningService) -> None:
        kept = await delegate(approvals, to="louis")
        gone = await delegate(approvals)
        await approvals.client.delete(f"/delegations/{gone['id']}", headers=FR_MANAGER)
        assert [d["id"] for d in await listed(approvals, FR_MANAGER)] == [kept["id"]]
        everything = await listed(approvals, FR_MANAGER, include_revoked="true")
        assert {d["id"]: d["status"] for d in everything} == {
            kept["id"]: "active",
            gone["id"]: "revoked",
        }
        assert await listed(approvals, DANA) == []


class TestRevoke:
    async def test_the_delegator_revokes(self, approvals: RunningService) -> None:
        created = await delegate(approvals)
        url = f"/delegations/{created['id']}"
        assert (await approvals.client.delete(url, headers=FR_MANAGER)).status_code == 204
        fetched = await approvals.client.get(url, headers=DANA)
        assert fetched.status_code == 200
        assert fetched.json()["status"] == "revoked"
        revoked_at = fetched.json()["revoked_at"]
        assert revoked_at is not None
        # Again: nothing changes.
        assert (await approvals.client.delete(url, headers=FR_MANAGER)).status_code == 204
        assert (await approvals.client.get(url, headers=FR_MANAGER)).json()["revoked_at"] == (
            revoked_at
        )
        async with approvals.sessions() as session:
            assert await active_delegations_to(session, "dana", datetime.now(UTC)) == []

    async def test_only_the_delegator(self, approvals: RunningService) -> None:
        created = await delegate(approvals)
        url = f"/delegations/{created['id']}"
        by_delegate = await approvals.client.delete(url, headers=DANA)
        assert by_delegate.status_code == 403
        assert by_delegate.json()["type"].endswith("/not-the-delegator")
        # Not a manager of the delegator's district (the central team is: see
        # test_governance.py).
        for stranger in (DE_MANAGER, FR_LEGAL, as_user("nobody")):
            assert (await approvals.client.delete(url, headers=stranger)).status_code == 404
            assert (await approvals.client.get(url, headers=stranger)).status_code == 404
        missing = await approvals.client.delete(f"/delegations/{uuid.uuid4()}", headers=FR_MANAGER)
        assert missing.status_code == 404
        assert missing.json()["type"].endswith("/delegation-not-found")
        assert (await approvals.client.get(url, headers=FR_MANAGER)).json()["status"] == "active"

    async def test_a_revoked_delegate_decides_no_more(self, approvals: RunningService) -> None:
        request_id = await open_request(approvals)
        created = await delegate(approvals, headers=FR_LEGAL)
        decide = f"/requests/{request_id}/decisions"
        await approvals.client.delete(f"/delegations/{created['id']}", headers=FR_LEGAL)
        refused = await approvals.client.post(decide, json={"outcome": "approve"}, headers=DANA)
        assert refused.status_code == 404, refused.text  # dana reads nothing in fr
        assert await approvals.scalar("SELECT count(*) FROM decisions") == 0
        await delegate(approvals, headers=FR_LEGAL)
        allowed = await approvals.client.post(decide, json={"outcome": "approve"}, headers=DANA)
        assert allowed.status_code == 201, allowed.text
        assert allowed.json()["decision"]["acting_for"] == "louis"


async def open_request(service: RunningService) -> uuid.UUID:
    """An open request in fr whose active step wants legal on fr."""
    request_id = uuid.uuid4()
    async with service.sessions.begin() as session:
        session.add(
            ApprovalRequest(
                id=request_id,
                subject_kind="post",
                subject_id=uuid.uuid4(),
                district_id="fr",
                title="Spring launch",
                author="fanny",
                snapshot={"text": "Our spring collection is here."},
                content_hash="0" * 64,
                policy_versions=[],
                status="open",
                current_position=0,
            )
        )
        await session.flush()
        session.add(
            RequestStep(
                request_id=request_id,
                position=0,
                key="legal",
                name="Legal review",
                role="legal",
                district_id="fr",
                quorum_mode="any",
                quorum_count=1,
                reasons=[],
                request_author="fanny",
                request_opened_at=datetime.now(UTC),
                status="active",
                approvals=0,
                activated_at=datetime.now(UTC),
            )
        )
    return request_id


async def test_active_delegations_to_on_its_boundaries(approvals: RunningService) -> None:
    start = datetime(2031, 3, 1, 9, 0, tzinfo=UTC)
    end = datetime(2031, 3, 8, 9, 0, tzinfo=UTC)
    tick = timedelta(microseconds=1)

    def row(delegate: str, **fields: Any) -> Delegation:
        values: dict[str, Any] = {
            "id": uuid.uuid4(),
            "delegator": "francois",
            "delegate": delegate,
            "grants": {"fr": ["district_manager"]},
            "starts_at": start,
            "ends_at": end,
            **fields,
        }
        return Delegation(**values)

    wanted = row("dana")
    later = row("dana", delegator="louis", starts_at=start + timedelta(days=1))
    async with approvals.sessions.begin() as session:
        session.add_all(
            [
                wanted,
                later,
                row("dana", delegator="florence", revoked_at=start - timedelta(days=1)),
                row("dora"),
            ]
        )
    async with approvals.sessions() as session:

        async def at(moment: datetime) -> list[uuid.UUID]:
            return [d.id for d in await active_delegations_to(session, "dana", moment)]

        assert await at(start - tick) == []
        assert await at(start) == [wanted.id]
        assert await at(start + timedelta(days=2)) == [wanted.id, later.id]
        assert await at(end - tick) == [wanted.id, later.id]
        assert await at(end) == []
        paris = start.astimezone(ZoneInfo("Europe/Paris"))
        assert await at(paris) == [wanted.id]
        found = await active_delegations_to(session, "dana", start)
        assert found[0].grants == {"fr": ["district_manager"]}
        assert await active_delegations_to(session, "nobody", start) == []


@pytest.mark.parametrize(
    ("starts_at", "ends_at"),
    [
        ("9999-12-30T00:00:00Z", "9999-12-31T23:59:59-01:00"),
        ("2999-12-31T00:00:00Z", "3000-01-01T00:00:00Z"),
    ],
)
async def test_a_period_beyond_the_years_planned_is_422(
    approvals: RunningService, starts_at: str, ends_at: str
) -> None:
    response = await approvals.client.post(
        "/delegations",
        json={"delegate": "dana", "starts_at": starts_at, "ends_at": ends_at},
        headers=FR_MANAGER,
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert ["body", "ends_at"] in [e["loc"] for e in response.json()["errors"]]
    assert await approvals.scalar("SELECT count(*) FROM delegations") == 0
