"""Nobody decides their own work, directly, through a delegate or through someone they
invited; an outside reviewer's answer counts only where the policy step says so. These tests
attack the approvals service through its HTTP API, as an author who manages their district
would: outside reviewers, rosters, the central team, and delegations."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from chassis.districts import DistrictEvent, DistrictReplica
from chassis.settings import organisation_settings
from services.approvals.models import districts
from tests.approvals.factories import (
    CENTRAL,
    DE_MANAGER,
    FR_LEGAL,
    FR_MANAGER,
    FR_MANAGER_2,
    FR_VIEWER,
    HQ_LEGAL,
    PARIS_MANAGER,
    decide,
    deliver,
    get,
    seed_districts,
    set_policy,
    submitted,
)
from tests.chassis.kit import eventually
from tests.conftest import Infrastructure
from tests.kit import RunningService, as_user, running_service, send

pytestmark = pytest.mark.asyncio

# The author of the posts below manages their district (francois, FR_MANAGER) and controls
# these addresses.
AUTHOR = FR_MANAGER
ATTACKER_ADDRESSES = ("me@attacker.example", "alt@attacker.example", "third@attacker.example")
HQ_MANAGER = as_user("hannah", hq="district_manager")
QUORUMS = [
    pytest.param({"mode": "any"}, id="any"),
    pytest.param({"mode": "all"}, id="all"),
    pytest.param({"mode": "count", "count": 2}, id="count-2"),
]
GRANTED = "chorus.approvals.approval.granted"


def manager_step(quorum: dict[str, Any], outside_review: dict[str, Any] | None) -> dict[str, Any]:
    step: dict[str, Any] = {
        "key": "manager",
        "name": "District manager",
        "role": "district_manager",
        "quorum": quorum,
    }
    if outside_review is not None:
        step["outside_review"] = outside_review
    return step


async def open_post(service: RunningService, author: str = "francois") -> dict[str, Any]:
    """A post of fr submitted by `author`, as calendar's event opens it."""
    event = submitted(author=author)
    await deliver(service, event)
    found = await service.client.get(
        "/requests", params={"subject_id": event.data["id"]}, headers=CENTRAL
    )
    [summary] = found.json()["items"]
    return await get(service, summary["id"])


async def fr_managers_roster(service: RunningService) -> None:
    """The roster a quorum of "all" counts: both of fr's managers (the author among them)."""
    response = await service.client.put(
        "/rosters/fr/district_manager",
        json={"people": ["francois", "florence"]},
        headers=FR_MANAGER_2,
    )
    assert response.status_code == 200, response.text


async def invite(
    service: RunningService,
    request_id: str,
    headers: dict[str, str],
    email: str = ATTACKER_ADDRESSES[0],
    position: int = 0,
) -> Any:
    return await service.client.post(
        f"/requests/{request_id}/steps/{position}/invites",
        json={"reviewer_name": "A reviewer", "reviewer_email": email},
        headers=headers,
    )


async def answer(service: RunningService, token: str, outcome: str = "approve") -> Any:
    body: dict[str, Any] = {"outcome": outcome}
    if outcome != "approve":
        body["comment"] = "Not like this"
    return await service.client.post(f"/public/reviews/{token}/decision", json=body)


async def delegate(
    service: RunningService,
    headers: dict[str, str],
    to: str,
    start: timedelta = -timedelta(hours=1),
    length: timedelta = timedelta(days=7),
    expect: int = 201,
) -> dict[str, Any]:
    starts_at = datetime.now(UTC) + start
    response = await service.client.post(
        "/delegations",
        json={
            "delegate": to,
            "starts_at": starts_at.isoformat(),
            "ends_at": (starts_at + length).isoformat(),
        },
        headers=headers,
    )
    assert response.status_code == expect, response.text
    result: dict[str, Any] = response.json()
    return result


async def add_top_district(service: RunningService, district_id: str) -> None:
    async with service.sessions.begin() as session:
        await DistrictReplica(districts).apply(
            session,
            DistrictEvent(
                id=district_id, name=district_id.title(), kind="region", path=district_id
            ),
        )


class TestOutsideReviewers:
    @pytest.mark.parametrize("quorum", QUORUMS)
    @pytest.mark.parametrize(
        ("outside_review", "status", "problem"),
        [
            pytest.param(None, 409, "step-takes-no-outside-reviewers", id="not-accepted"),
            pytest.param({}, 403, "self-approval", id="advisory"),
            pytest.param({"counts_towards_quorum": True}, 403, "self-approval", id="counted"),
        ],
    )
    async def test_the_author_cannot_invite_reviewers_to_their_own_post(
        self,
        approvals: RunningService,
        quorum: dict[str, Any],
        outside_review: dict[str, Any] | None,
        status: int,
        problem: str,
    ) -> None:
        await fr_managers_roster(approvals)
        await set_policy(approvals, [manager_step(quorum, outside_review)])
        request = await open_post(approvals, author="francois")
        for email in ATTACKER_ADDRESSES:
            refused = await invite(approvals, request["id"], AUTHOR, email)
            assert refused.status_code == status, refused.text
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["type"].endswith("/" + problem)
        assert await approvals.scalar("SELECT count(*) FROM review_invites") == 0
        after = await get(approvals, request["id"])
        assert after["status"] == "open"
        assert after["decisions"] == []
        assert await approvals.events(GRANTED) == []

    async def test_not_through_a_delegate_either_way(self, approvals: RunningService) -> None:
        await set_policy(
            approvals, [manager_step({"mode": "any"}, {"counts_towards_quorum": True})]
        )
        request = await open_post(approvals, author="francois")
        # The author's delegate (who reads fr) invites for the author.
        await delegate(approvals, AUTHOR, to="victor")
        by_delegate = await invite(approvals, request["id"], FR_VIEWER)
        assert by_delegate.status_code == 403, by_delegate.text
        assert by_delegate.json()["type"].endswith("/self-approval")
        # The author stands in for another manager and invites as their delegate.
        await delegate(approvals, FR_MANAGER_2, to="francois")
        as_delegate = await invite(approvals, request["id"], AUTHOR)
        assert as_delegate.status_code == 403, as_delegate.text
        assert as_delegate.json()["type"].endswith("/self-approval")
        assert await approvals.scalar("SELECT count(*) FROM review_invites") == 0
        assert (await get(approvals, request["id"]))["status"] == "open"

    @pytest.mark.parametrize("quorum", QUORUMS)
    async def test_advisory_answers_never_decide(
        self, approvals: RunningService, quorum: dict[str, Any]
    ) -> None:
        await fr_managers_roster(approvals)
        await set_policy(approvals, [manager_step(quorum, {})])
        request = await open_post(approvals, author="francois")
        assert request["steps"][0]["outside_review"] == "advisory"
        # Another manager of fr (eligible, not the author) invites: whatever they say, the
        # answers are advice.
        tokens = []
        for email in ATTACKER_ADDRESSES:
            created = await invite(approvals, request["id"], FR_MANAGER_2, email)
            assert created.status_code == 201, created.text
            tokens.append(created.json()["token"])
        for token in tokens[:2]:
            answered = await answer(approvals, token)
            assert answered.status_code == 201, answered.text
            assert answered.json()["counted"] is False
            assert answered.json()["request_status"] == "open"
        rejected = await answer(approvals, tokens[2], "reject")
        assert rejected.status_code == 201, rejected.text
        assert rejected.json()["request_status"] == "open"

        seen = await approvals.client.get(f"/requests/{request['id']}", headers=FR_MANAGER_2)
        assert seen.status_code == 200, seen.text
        body = seen.json()
        assert body["status"] == "open"
        assert body["decisions"] == []
        assert body["steps"][0]["approvals"] == 0
        assert body["steps"][0]["status"] == "active"
        assert [(a["reviewer_email"], a["outcome"]) for a in body["advisory_answers"]] == [
            (ATTACKER_ADDRESSES[0], "approve"),
            (ATTACKER_ADDRESSES[1], "approve"),
            (ATTACKER_ADDRESSES[2], "reject"),
        ]
        assert {a["invited_by"] for a in body["advisory_answers"]} == {"florence"}
        assert await approvals.events(GRANTED) == []
        assert await approvals.events("chorus.approvals.approval.step_decided") == []
        assert await approvals.events("chorus.approvals.approval.rejected") == []
        history = await approvals.client.get(
            f"/requests/{request['id']}/history", headers=FR_MANAGER_2
        )
        actions = [h["action"] for h in history.json()["items"]]
        assert actions.count("advice_given") == 3

        # The approvers decide, the advice in front of them.
        first = await decide(approvals, request["id"], FR_MANAGER_2)
        assert first.status_code == 201, first.text
        if quorum["mode"] != "any":
            assert first.json()["request"]["status"] == "open"
            second = await decide(approvals, request["id"], HQ_MANAGER)
            assert second.status_code == 201, second.text
        assert (await get(approvals, request["id"]))["status"] == "granted"
        [granted] = await approvals.events(GRANTED)
        assert granted["data"]["decided_by"] in ("florence", "hannah")

    async def test_counted_answers_are_decisions_of_an_eligible_approvers_invitees(
        self, approvals: RunningService
    ) -> None:
        await set_policy(
            approvals,
            [manager_step({"mode": "count", "count": 2}, {"counts_towards_quorum": True})],
        )
        request = await open_post(approvals, author="fanny")
        created = await invite(approvals, request["id"], FR_MANAGER_2)
        assert created.status_code == 201, created.text
        answered = await answer(approvals, created.json()["token"])
        assert answered.json()["counted"] is True
        assert answered.json()["request_status"] == "open"
        decided = await decide(approvals, request["id"], FR_MANAGER)
        assert decided.json()["request"]["status"] == "granted"
        assert [(d["decider"], d["via"]) for d in decided.json()["request"]["decisions"]] == [
            (f"external:{ATTACKER_ADDRESSES[0]}", "external"),
            ("francois", "grant"),
        ]

    async def test_an_ineligible_manager_cannot_invite_to_a_legal_step_at_the_top(
        self, approvals: RunningService
    ) -> None:
        await set_policy(
            approvals,
            [
                {
                    "key": "legal",
                    "name": "Legal",
                    "role": "legal",
                    "resolve_at": "root",
                    "outside_review": {"counts_towards_quorum": True},
                }
            ],
            district_id=None,
            headers=CENTRAL,
        )
        request = await open_post(approvals, author="fanny")
        assert (request["steps"][0]["role"], request["steps"][0]["district_id"]) == ("legal", "hq")
        for headers in (FR_MANAGER, FR_LEGAL, PARIS_MANAGER, CENTRAL):
            refused = await invite(approvals, request["id"], headers)
            assert refused.status_code in (403, 404), refused.text
            if refused.status_code == 403:
                assert refused.json()["type"].endswith("/invite-needs-eligible-approver")
        assert await approvals.scalar("SELECT count(*) FROM review_invites") == 0
        withdrawn = await invite(approvals, request["id"], HQ_LEGAL, "other@firm.example")
        assert withdrawn.status_code == 201, withdrawn.text
        url = f"/requests/{request['id']}/invites/{withdrawn.json()['id']}"
        # Who sent a link may withdraw it; another approver who is not a manager may not.
        assert (await approvals.client.delete(url, headers=FR_LEGAL)).status_code == 403
        assert (await approvals.client.delete(url, headers=HQ_LEGAL)).status_code == 204
        created = await invite(approvals, request["id"], HQ_LEGAL, "counsel@firm.example")
        assert created.status_code == 201, created.text
        answered = await answer(approvals, created.json()["token"])
        assert answered.json()["request_status"] == "granted"

    async def test_a_step_takes_outside_reviewers_only_when_its_policy_says_so(
        self, approvals: RunningService
    ) -> None:
        await set_policy(approvals, [manager_step({"mode": "any"}, None)])
        request = await open_post(approvals, author="fanny")
        assert request["steps"][0]["outside_review"] == "none"
        for headers in (FR_MANAGER, CENTRAL):
            refused = await invite(approvals, request["id"], headers)
            assert refused.status_code == 409, refused.text
            assert refused.json()["type"].endswith("/step-takes-no-outside-reviewers")
        # The default plan (no policy) takes none either.
        await approvals.client.delete(
            f"/policies/{request['policy_versions'][0]['policy_id']}", headers=FR_MANAGER
        )
        default = await open_post(approvals, author="fanny")
        assert default["steps"][0]["key"] == "district-manager"
        refused = await invite(approvals, default["id"], FR_MANAGER)
        assert refused.status_code == 409, refused.text

    async def test_a_link_to_a_step_that_takes_no_outside_review_decides_nothing(
        self, approvals: RunningService
    ) -> None:
        # An invite made before steps said whether they take outside reviewers: its step
        # reads "none" since, and the answer is refused.
        await set_policy(approvals, [manager_step({"mode": "any"}, {})])
        request = await open_post(approvals, author="fanny")
        created = await invite(approvals, request["id"], FR_MANAGER)
        assert created.status_code == 201, created.text
        async with approvals.sessions.begin() as session:
            await session.execute(
                text("UPDATE request_steps SET outside_review = 'none' WHERE request_id = :i"),
                {"i": request["id"]},
            )
        refused = await answer(approvals, created.json()["token"])
        assert refused.status_code == 409, refused.text
        assert refused.json()["type"].endswith("/step-takes-no-outside-reviewers")
        after = await get(approvals, request["id"])
        assert (after["status"], after["decisions"], after["advisory_answers"]) == ("open", [], [])

    async def test_a_request_keeps_the_outside_review_it_was_planned_with(
        self, approvals: RunningService
    ) -> None:
        await set_policy(approvals, [manager_step({"mode": "any"}, {})])
        before = await open_post(approvals, author="fanny")
        await set_policy(
            approvals, [manager_step({"mode": "any"}, {"counts_towards_quorum": True})]
        )
        after = await open_post(approvals, author="fanny")
        assert before["steps"][0]["outside_review"] == "advisory"
        assert after["steps"][0]["outside_review"] == "counted"
        created = await invite(approvals, before["id"], FR_MANAGER)
        answered = await answer(approvals, created.json()["token"])
        assert answered.json()["counted"] is False
        assert (await get(approvals, before["id"]))["status"] == "open"
        versions = await approvals.client.get(
            f"/policies/{before['policy_versions'][0]['policy_id']}/versions/1",
            headers=FR_MANAGER,
        )
        assert versions.json()["steps"][0]["outside_review"] == {"counts_towards_quorum": False}

    @pytest.mark.parametrize(
        "outside_review",
        [{"counts": True}, True, "advisory", {"counts_towards_quorum": "sometimes"}],
    )
    async def test_an_invalid_outside_review_is_422(
        self, approvals: RunningService, outside_review: Any
    ) -> None:
        response = await approvals.client.put(
            "/policies/post",
            params={"district_id": "fr"},
            json={
                "steps": [{**manager_step({"mode": "any"}, None), "outside_review": outside_review}]
            },
            headers=FR_MANAGER,
        )
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert await approvals.scalar("SELECT count(*) FROM policies") == 0


async def test_through_the_broker_the_authors_invitees_grant_nothing(
    infrastructure: Infrastructure,
) -> None:
    """The submission arrives from calendar through the broker; the author's attempt and an
    advisory answer leave the request open and publish no approval."""
    async with running_service(infrastructure, "approvals", role="all") as approvals:
        await seed_districts(approvals)
        await set_policy(approvals, [manager_step({"mode": "any"}, {})])
        event = submitted(author="francois")
        await send(infrastructure, "chorus.calendar.events", event)

        async def opened() -> bool:
            response = await approvals.client.get(
                "/requests", params={"subject_id": event.data["id"]}, headers=CENTRAL
            )
            return bool(response.json()["items"])

        await eventually(opened, within=60)
        found = await approvals.client.get(
            "/requests", params={"subject_id": event.data["id"]}, headers=CENTRAL
        )
        [request] = found.json()["items"]
        refused = await invite(approvals, request["id"], AUTHOR)
        assert refused.status_code == 403, refused.text
        created = await invite(approvals, request["id"], FR_MANAGER_2)
        assert created.status_code == 201, created.text
        assert (await answer(approvals, created.json()["token"])).status_code == 201
        assert (await get(approvals, request["id"]))["status"] == "open"
        assert await approvals.events(GRANTED) == []
        decided = await decide(approvals, request["id"], FR_MANAGER_2)
        assert decided.status_code == 201, decided.text
        [granted] = await approvals.events(GRANTED)
        assert granted["data"]["subject_id"] == event.data["id"]


class TestRosters:
    async def test_a_child_manager_cannot_lower_the_quorum_a_parent_asks(
        self, approvals: RunningService
    ) -> None:
        brand_all = {
            "key": "brand",
            "name": "Brand",
            "role": "brand",
            "quorum": {"mode": "all"},
        }
        await set_policy(approvals, [brand_all], district_id="hq", headers=CENTRAL)
        kept = await approvals.client.put(
            "/rosters/fr/brand", json={"people": ["bea", "ben", "bob"]}, headers=CENTRAL
        )
        assert kept.status_code == 200, kept.text
        lowered = await approvals.client.put(
            "/rosters/fr/brand", json={"people": ["bea"]}, headers=FR_MANAGER
        )
        assert lowered.status_code == 403, lowered.text
        assert lowered.json()["type"].endswith("/roster-kept-where-policy-is-defined")
        roster = await approvals.client.get("/rosters/fr/brand", headers=FR_MANAGER)
        assert roster.json()["people"] == ["bea", "ben", "bob"]
        request = await open_post(approvals, author="fanny")
        assert request["steps"][0]["quorum_count"] == 3
        # A roster no policy above relies on stays the district's to keep.
        own = await approvals.client.put(
            "/rosters/fr/approver", json={"people": ["ann"]}, headers=FR_MANAGER
        )
        assert own.status_code == 200, own.text
        # The level of the policy keeps it.
        assert (
            await approvals.client.put(
                "/rosters/fr/brand", json={"people": ["bea", "ben"]}, headers=HQ_MANAGER
            )
        ).status_code == 200

    async def test_a_company_wide_policy_leaves_its_rosters_to_the_central_team(
        self, approvals: RunningService
    ) -> None:
        legal_all = {
            "key": "legal",
            "name": "Legal",
            "role": "legal",
            "resolve_at": "parent",
            "quorum": {"mode": "all"},
        }
        await set_policy(approvals, [legal_all], district_id=None, headers=CENTRAL)
        for headers in (PARIS_MANAGER, FR_MANAGER, HQ_MANAGER):
            refused = await approvals.client.put(
                "/rosters/fr-paris/legal", json={"people": ["lea"]}, headers=headers
            )
            assert refused.status_code == 403, refused.text
        assert await approvals.scalar("SELECT count(*) FROM approver_roster") == 0
        allowed = await approvals.client.put(
            "/rosters/fr-paris/legal", json={"people": ["lea", "lou"]}, headers=CENTRAL
        )
        assert allowed.status_code == 200, allowed.text

    async def test_a_parents_policy_resolving_at_the_child_is_kept_by_the_parent(
        self, approvals: RunningService
    ) -> None:
        await set_policy(
            approvals,
            [{"key": "team", "name": "Team", "role": "approver", "quorum": {"mode": "all"}}],
        )
        refused = await approvals.client.put(
            "/rosters/fr-paris/approver", json={"people": ["pat"]}, headers=PARIS_MANAGER
        )
        assert refused.status_code == 403, refused.text
        allowed = await approvals.client.put(
            "/rosters/fr-paris/approver", json={"people": ["pat", "pia"]}, headers=FR_MANAGER
        )
        assert allowed.status_code == 200, allowed.text


@pytest.fixture
def central_districts(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    def use(value: str) -> None:
        monkeypatch.setenv("CHORUS_CENTRAL_DISTRICTS", value)
        organisation_settings.cache_clear()

    yield use
    organisation_settings.cache_clear()


COMPANY_STEP = {"key": "company-brand", "name": "Brand", "role": "brand"}


class TestCentral:
    async def put_company_policy(self, service: RunningService, headers: dict[str, str]) -> int:
        response = await service.client.put(
            "/policies/post", json={"steps": [COMPANY_STEP]}, headers=headers
        )
        return response.status_code

    async def test_a_regional_manager_of_another_top_district_is_not_central(
        self, approvals: RunningService
    ) -> None:
        await add_top_district(approvals, "brandco")
        rita = as_user("rita", brandco="regional_manager")
        assert await self.put_company_policy(approvals, rita) == 403
        assert await approvals.scalar("SELECT count(*) FROM policies") == 0
        own = await approvals.client.put(
            "/policies/post",
            params={"district_id": "brandco"},
            json={"steps": [{**COMPANY_STEP, "key": "brandco-brand"}]},
            headers=rita,
        )
        assert own.status_code == 201, own.text
        assert await self.put_company_policy(approvals, CENTRAL) == 201

    async def test_the_central_districts_are_a_setting(
        self, approvals: RunningService, central_districts: Callable[[str], None]
    ) -> None:
        await add_top_district(approvals, "brandco")
        rita = as_user("rita", brandco="regional_manager")
        central_districts("brandco")
        assert await self.put_company_policy(approvals, CENTRAL) == 403
        assert await self.put_company_policy(approvals, rita) == 201
        central_districts("hq, brandco")
        assert await self.put_company_policy(approvals, CENTRAL) == 200


class TestDelegations:
    async def test_a_delegation_starts_within_90_days(self, approvals: RunningService) -> None:
        late = await delegate(
            approvals,
            FR_MANAGER,
            "dana",
            start=timedelta(days=91),
            length=timedelta(days=1),
            expect=422,
        )
        assert late["type"].endswith("/delegation-starts-too-late")
        await delegate(approvals, FR_MANAGER, "dana", start=timedelta(days=89))

    async def test_back_to_back_delegations_cover_at_most_90_days(
        self, approvals: RunningService
    ) -> None:
        start = -timedelta(hours=1)
        first = await delegate(approvals, FR_MANAGER, "dana", start, timedelta(days=60))
        await delegate(
            approvals, FR_MANAGER, "dora", start + timedelta(days=60), timedelta(days=30)
        )
        more = await delegate(
            approvals,
            FR_MANAGER,
            "dina",
            start + timedelta(days=90),
            timedelta(days=1),
            expect=409,
        )
        assert more["type"].endswith("/delegation-coverage-exceeded")
        # Two deputies for the same days count once.
        await delegate(approvals, FR_MANAGER, "deputy", start + timedelta(days=1), timedelta(1))
        revoked = await approvals.client.delete(f"/delegations/{first['id']}", headers=FR_MANAGER)
        assert revoked.status_code == 204
        await delegate(approvals, FR_MANAGER, "dina", start + timedelta(days=90), timedelta(days=1))
        # Another delegator has their own allowance.
        await delegate(approvals, FR_LEGAL, "dana", start, timedelta(days=90))

    async def test_the_bounds_are_settings(self, infrastructure: Infrastructure) -> None:
        async with running_service(
            infrastructure,
            "approvals",
            delegation_max_lead_days=7,
            delegation_max_coverage_days=10,
        ) as approvals:
            await seed_districts(approvals)
            late = await delegate(
                approvals, FR_MANAGER, "dana", timedelta(days=8), timedelta(days=1), expect=422
            )
            assert late["max_lead_days"] == 7
            long = await delegate(
                approvals, FR_MANAGER, "dana", -timedelta(hours=1), timedelta(days=11), expect=409
            )
            assert long["max_coverage_days"] == 10
            await delegate(approvals, FR_MANAGER, "dana", -timedelta(hours=1), timedelta(days=10))

    async def test_managers_of_the_delegators_district_list_and_revoke(
        self, approvals: RunningService
    ) -> None:
        given = await delegate(approvals, FR_LEGAL, "victor")
        elsewhere = await delegate(approvals, DE_MANAGER, "dana")
        url = f"/delegations/{given['id']}"

        async def managed(headers: dict[str, str]) -> set[str]:
            response = await approvals.client.get(
                "/delegations", params={"direction": "managed"}, headers=headers
            )
            assert response.status_code == 200, response.text
            return {d["id"] for d in response.json()["items"]}

        assert await managed(FR_MANAGER) == {given["id"]}
        assert await managed(CENTRAL) == {given["id"], elsewhere["id"]}
        assert await managed(DE_MANAGER) == {elsewhere["id"]}
        assert await managed(PARIS_MANAGER) == set()
        assert await managed(FR_VIEWER) == set()
        for stranger in (DE_MANAGER, PARIS_MANAGER):
            assert (await approvals.client.get(url, headers=stranger)).status_code == 404
            assert (await approvals.client.delete(url, headers=stranger)).status_code == 404
        assert (await approvals.client.get(url, headers=FR_MANAGER)).status_code == 200

        request = await open_post(approvals, author="fanny")
        await set_policy(
            approvals, [{"key": "legal", "name": "Legal", "role": "legal"}], district_id="fr"
        )
        legal_request = await open_post(approvals, author="fanny")
        assert request["id"] != legal_request["id"]
        assert (await approvals.client.delete(url, headers=FR_MANAGER)).status_code == 204
        revoked = (await approvals.client.get(url, headers=FR_LEGAL)).json()
        assert (revoked["status"], revoked["revoked_by"]) == ("revoked", "francois")
        refused = await decide(approvals, legal_request["id"], FR_VIEWER)
        assert refused.status_code == 403, refused.text
        # The central team revokes too.
        central = await approvals.client.delete(f"/delegations/{elsewhere['id']}", headers=CENTRAL)
        assert central.status_code == 204

    async def test_a_delegation_follows_the_delegators_lost_role(
        self, approvals: RunningService
    ) -> None:
        await set_policy(approvals, [{"key": "legal", "name": "Legal", "role": "legal"}])
        request = await open_post(approvals, author="fanny")
        louis_before = as_user("louis", fr="legal", hq="brand")
        given = await delegate(approvals, louis_before, "victor")
        # Louis is no longer legal; the next time approvals sees him, what he delegated
        # shrinks to what he still holds.
        louis_after = as_user("louis", hq="brand")
        seen = await approvals.client.get("/approvals/pending", headers=louis_after)
        assert seen.status_code == 200, seen.text
        narrowed = (
            await approvals.client.get(f"/delegations/{given['id']}", headers=FR_VIEWER)
        ).json()
        assert narrowed["grants"] == {"hq": ["brand"]}
        assert narrowed["status"] == "active"
        refused = await decide(approvals, request["id"], FR_VIEWER)
        assert refused.status_code == 403, refused.text
        assert refused.json()["type"].endswith("/not-an-eligible-approver")
        # Nothing left to delegate: the delegation ends.
        await approvals.client.get("/delegations", headers=as_user("louis"))
        ended = (
            await approvals.client.get(f"/delegations/{given['id']}", headers=FR_VIEWER)
        ).json()
        assert (ended["status"], ended["revoked_by"]) == ("revoked", "louis")

    async def test_a_delegate_decides_through_another_delegation_not_the_authors(
        self, approvals: RunningService
    ) -> None:
        request = await open_post(approvals, author="francois")
        await delegate(approvals, AUTHOR, "victor")
        refused = await decide(approvals, request["id"], FR_VIEWER)
        assert refused.status_code == 403, refused.text
        assert refused.json()["type"].endswith("/self-approval")
        pending = await approvals.client.get("/approvals/pending", headers=FR_VIEWER)
        assert pending.json()["items"] == []
        # With florence's delegation too, victor decides for florence, never for the author.
        await delegate(approvals, FR_MANAGER_2, "victor")
        pending = await approvals.client.get("/approvals/pending", headers=FR_VIEWER)
        assert [i["request"]["id"] for i in pending.json()["items"]] == [request["id"]]
        decided = await decide(approvals, request["id"], FR_VIEWER)
        assert decided.status_code == 201, decided.text
        assert decided.json()["decision"]["acting_for"] == "florence"
