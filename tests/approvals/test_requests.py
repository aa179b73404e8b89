"""Approval requests: opening from submissions, quorum, self-approval, other districts,
concurrent and repeated decisions, supersession, withdrawal, expiry, deadlines escalated by
the job queue, delegation, and "my pending approvals"."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from chassis.events import CloudEvent
from services.approvals.requests import deadlines
from tests.approvals.factories import (
    CENTRAL,
    DE_MANAGER,
    FR_LEGAL,
    FR_MANAGER,
    FR_MANAGER_2,
    FR_VIEWER,
    FR_WRITER,
    HQ_LEGAL,
    decide,
    deliver,
    get,
    open_request,
    seed_districts,
    set_policy,
    submitted,
)
from tests.chassis.kit import eventually
from tests.conftest import Infrastructure
from tests.kit import RunningService, as_user, running_service

pytestmark = pytest.mark.asyncio

EVERY_SECOND = "* * * * * *"


MANAGER_STEP = {"key": "manager", "name": "District manager", "role": "district_manager"}
LEGAL_STEP = {"key": "legal", "name": "Legal", "role": "legal", "resolve_at": "policy"}


class TestOpening:
    async def test_a_submitted_post_opens_a_request_with_its_snapshot_and_plan(
        self, approvals: RunningService
    ) -> None:
        await set_policy(approvals, [MANAGER_STEP, LEGAL_STEP])
        event = submitted()
        await deliver(approvals, event)
        await deliver(approvals, event)  # redelivered: still one request
        found = await approvals.client.get(
            "/requests", params={"subject_id": event.data["id"]}, headers=FR_VIEWER
        )
        [summary] = found.json()["items"]
        request = await get(approvals, summary["id"])
        assert request["status"] == "open"
        assert request["subject_kind"] == "post"
        assert request["author"] == "fanny"
        assert request["content_hash"] == event.data["content_hash"]
        assert request["snapshot"]["text"] == "Our spring collection is here."
        assert [(s["key"], s["status"]) for s in request["steps"]] == [
            ("manager", "active"),
            ("legal", "waiting"),
        ]
        assert request["policy_versions"][0]["version"] == 1
        [opened] = await approvals.events("chorus.approvals.approval.requested")
        assert opened["data"]["subject_id"] == event.data["id"]
        assert [s["key"] for s in opened["data"]["steps"]] == ["manager", "legal"]

    async def test_another_districts_request_does_not_exist(
        self, approvals: RunningService
    ) -> None:
        request = await open_request(approvals)
        seen = await approvals.client.get(f"/requests/{request['id']}", headers=DE_MANAGER)
        assert seen.status_code == 404
        assert seen.json()["type"].endswith("/approval-request-not-found")
        decided = await decide(approvals, request["id"], DE_MANAGER)
        assert decided.status_code == 404
        listed = await approvals.client.get("/requests", headers=DE_MANAGER)
        assert listed.json()["items"] == []

    async def test_a_newer_submission_supersedes_the_open_request(
        self, approvals: RunningService
    ) -> None:
        first = await open_request(approvals)
        second = await open_request(approvals, post_id=uuid.UUID(first["subject_id"]))
        assert second["id"] != first["id"]
        assert (await get(approvals, first["id"]))["status"] == "superseded"
        [event] = await approvals.events("chorus.approvals.approval.superseded")
        assert event["data"]["request_id"] == first["id"]
        assert event["data"]["superseded_by"] == second["id"]
        late = await decide(approvals, first["id"], FR_MANAGER)
        assert late.status_code == 409

    async def test_an_edited_post_withdraws_its_request(self, approvals: RunningService) -> None:
        request = await open_request(approvals)
        await deliver(
            approvals,
            CloudEvent(
                source="/services/calendar",
                type="chorus.calendar.post.withdrawn",
                subject=request["subject_id"],
                data={"id": request["subject_id"], "reason": "edited after submission"},
            ),
        )
        assert (await get(approvals, request["id"]))["status"] == "withdrawn"
        [withdrawn] = await approvals.events("chorus.approvals.approval.withdrawn")
        assert withdrawn["data"]["request_id"] == request["id"]
        assert withdrawn["data"]["reason"] == "edited after submission"

    async def test_an_account_request_opens_one_too(self, approvals: RunningService) -> None:
        request_id = str(uuid.uuid4())
        await deliver(
            approvals,
            CloudEvent(
                source="/services/inventory",
                type="chorus.inventory.account.requested",
                subject=request_id,
                data={
                    "request_id": request_id,
                    "subject_kind": "account_request",
                    "district_id": "fr",
                    "platform": "tiktok",
                    "handle": "chorus_fr",
                    "purpose": "Reach students",
                    "requested_by": "fanny",
                    "snapshot": {"platform": "tiktok", "handle": "chorus_fr"},
                    "content_hash": "ab" * 32,
                },
            ),
        )
        listed = await approvals.client.get(
            "/requests", params={"subject_kind": "account_request"}, headers=FR_MANAGER
        )
        [request] = listed.json()["items"]
        assert request["subject_id"] == request_id
        assert request["expires_at"] is None
        decided = await decide(approvals, request["id"], FR_MANAGER)
        assert decided.status_code == 201, decided.text
        [granted] = await approvals.events("chorus.approvals.approval.granted")
        assert granted["data"]["subject_kind"] == "account_request"
        assert granted["data"]["subject_id"] == request_id
        assert granted["data"]["decided_by"] == "francois"


class TestDeciding:
    async def test_steps_run_in_order_with_their_quorum(self, approvals: RunningService) -> None:
        await set_policy(
            approvals,
            [
                {**MANAGER_STEP, "quorum": {"mode": "count", "count": 2}},
                {**LEGAL_STEP, "resolve_at": "subject"},
            ],
        )
        request = await open_request(approvals)
        legal_too_early = await decide(approvals, request["id"], FR_LEGAL)
        assert legal_too_early.status_code == 403
        one = await decide(approvals, request["id"], FR_MANAGER)
        assert one.status_code == 201, one.text
        body = one.json()["request"]
        assert body["steps"][0]["approvals"] == 1
        assert body["steps"][0]["status"] == "active"
        again = await decide(approvals, request["id"], FR_MANAGER)
        assert again.status_code == 409
        assert again.json()["type"].endswith("/already-decided")
        two = await decide(approvals, request["id"], FR_MANAGER_2)
        assert [s["status"] for s in two.json()["request"]["steps"]] == ["approved", "active"]
        assert await approvals.events("chorus.approvals.approval.granted") == []
        legal = await decide(approvals, request["id"], FR_LEGAL, comment="Fine by legal")
        assert legal.json()["request"]["status"] == "granted"
        [granted] = await approvals.events("chorus.approvals.approval.granted")
        assert granted["data"]["subject_id"] == request["subject_id"]
        assert granted["data"]["content_hash"] == request["content_hash"]
        assert granted["data"]["decided_by"] == "louis"
        decided = await approvals.events("chorus.approvals.approval.step_decided")
        assert [e["data"]["decider"] for e in decided] == ["francois", "florence", "louis"]

    @pytest.mark.parametrize(
        ("outcome", "status", "event"),
        [
            ("reject", "rejected", "chorus.approvals.approval.rejected"),
            ("request_changes", "changes_requested", "chorus.approvals.approval.changes_requested"),
        ],
    )
    async def test_a_rejection_or_a_request_for_changes_closes_the_request(
        self, approvals: RunningService, outcome: str, status: str, event: str
    ) -> None:
        request = await open_request(approvals)
        no_reason = await approvals.client.post(
            f"/requests/{request['id']}/decisions",
            json={"outcome": outcome},
            headers=FR_MANAGER,
        )
        assert no_reason.status_code == 422
        decided = await decide(approvals, request["id"], FR_MANAGER, outcome)
        assert decided.json()["request"]["status"] == status
        [closed] = await approvals.events(event)
        assert closed["data"]["comment"] == "Not like this"
        assert closed["data"]["subject_id"] == request["subject_id"]

    async def test_the_author_never_approves_their_own_post(
        self, approvals: RunningService
    ) -> None:
        request = await open_request(approvals, author="francois")
        refused = await decide(approvals, request["id"], FR_MANAGER)
        assert refused.status_code == 403
        assert refused.json()["type"].endswith("/self-approval")
        assert (await get(approvals, request["id"]))["decisions"] == []

    async def test_only_eligible_approvers_decide(self, approvals: RunningService) -> None:
        request = await open_request(approvals)
        for headers in (FR_WRITER, FR_VIEWER, FR_LEGAL):
            refused = await decide(approvals, request["id"], headers)
            assert refused.status_code == 403, refused.text
            assert refused.json()["type"].endswith("/not-an-eligible-approver")
        # A manager above the district holds the role there too.
        hq_manager = as_user("hannah", hq="district_manager")
        assert (await decide(approvals, request["id"], hq_manager)).status_code == 201

    async def test_a_role_decides_where_a_role_it_includes_is_asked(
        self, approvals: RunningService
    ) -> None:
        """The role hierarchy (``chassis.principal.ROLE_INCLUDES``): a regional manager is a
        district manager too, but no manager is legal."""
        await set_policy(approvals, [MANAGER_STEP, {**LEGAL_STEP, "resolve_at": "subject"}])
        request = await open_request(approvals, title="Spring")
        listed = await approvals.client.get("/approvals/pending", headers=CENTRAL)
        assert [(i["request"]["title"], i["step"]["key"]) for i in listed.json()["items"]] == [
            ("Spring", "manager")
        ]
        manager_step = await decide(approvals, request["id"], CENTRAL)
        assert manager_step.status_code == 201, manager_step.text
        assert [s["status"] for s in manager_step.json()["request"]["steps"]] == [
            "approved",
            "active",
        ]
        refused = await decide(approvals, request["id"], CENTRAL)
        assert refused.status_code == 403, refused.text
        assert refused.json()["type"].endswith("/not-an-eligible-approver")
        listed = await approvals.client.get("/approvals/pending", headers=CENTRAL)
        assert listed.json()["items"] == []

    async def test_a_step_may_ask_for_its_exact_role(self, approvals: RunningService) -> None:
        await set_policy(approvals, [{**MANAGER_STEP, "exact_role": True}])
        request = await open_request(approvals, title="Exact")
        assert request["steps"][0]["exact_role"] is True
        listed = await approvals.client.get("/approvals/pending", headers=CENTRAL)
        assert listed.json()["items"] == []
        refused = await decide(approvals, request["id"], CENTRAL)
        assert refused.status_code == 403, refused.text
        assert refused.json()["type"].endswith("/not-an-eligible-approver")
        # A district manager above the district holds the very role.
        hq_manager = as_user("hannah", hq="district_manager")
        listed = await approvals.client.get("/approvals/pending", headers=hq_manager)
        assert [i["request"]["title"] for i in listed.json()["items"]] == ["Exact"]
        decided = await decide(approvals, request["id"], hq_manager)
        assert decided.status_code == 201, decided.text
        assert decided.json()["request"]["status"] == "granted"

    async def test_two_approvers_at_once_leave_one_decision(
        self, approvals: RunningService
    ) -> None:
        request = await open_request(approvals)
        results = await asyncio.gather(
            decide(approvals, request["id"], FR_MANAGER),
            decide(approvals, request["id"], FR_MANAGER_2),
        )
        assert sorted(r.status_code for r in results) == [201, 409]
        final = await get(approvals, request["id"])
        assert final["status"] == "granted"
        assert len(final["decisions"]) == 1
        assert len(await approvals.events("chorus.approvals.approval.granted")) == 1

    async def test_the_same_idempotency_key_changes_nothing(
        self, approvals: RunningService
    ) -> None:
        await set_policy(approvals, [{**MANAGER_STEP, "quorum": {"mode": "count", "count": 2}}])
        request = await open_request(approvals)
        first = await decide(approvals, request["id"], FR_MANAGER, key="k-1")
        assert first.status_code == 201
        repeat = await decide(approvals, request["id"], FR_MANAGER, key="k-1")
        assert repeat.status_code == 200
        assert repeat.json()["decision"] == first.json()["decision"]
        final = await get(approvals, request["id"])
        assert final["steps"][0]["approvals"] == 1
        assert len(await approvals.events("chorus.approvals.approval.step_decided")) == 1

    async def test_decisions_and_history_cannot_be_rewritten(
        self, approvals: RunningService
    ) -> None:
        request = await open_request(approvals)
        await decide(approvals, request["id"], FR_MANAGER)
        for table in ("decisions", "request_history"):
            with pytest.raises(Exception, match="append-only"):
                async with approvals.sessions.begin() as session:
                    await session.execute(text(f"UPDATE {table} SET request_id = request_id"))
        history = await approvals.client.get(
            f"/requests/{request['id']}/history", headers=FR_VIEWER
        )
        assert [h["action"] for h in history.json()["items"]] == ["opened", "decided", "granted"]


class TestTime:
    async def test_a_request_whose_publish_time_passed_expires(
        self, approvals: RunningService
    ) -> None:
        request = await open_request(approvals)
        async with approvals.sessions.begin() as session:
            await session.execute(
                text("UPDATE requests SET expires_at = now() - interval '1 minute' WHERE id = :i"),
                {"i": request["id"]},
            )
        async with approvals.sessions.begin() as session:
            counts = await deadlines.sweep(session)
        assert counts["expired"] == 1
        assert (await get(approvals, request["id"]))["status"] == "expired"
        [event] = await approvals.events("chorus.approvals.approval.expired")
        assert event["data"]["subject_id"] == request["subject_id"]
        assert (await decide(approvals, request["id"], FR_MANAGER)).status_code == 409

    async def test_the_job_queue_escalates_a_missed_deadline(
        self, infrastructure: Infrastructure
    ) -> None:
        async with running_service(
            infrastructure, "approvals", role="all", deadline_sweep_cron=EVERY_SECOND
        ) as approvals:
            await seed_districts(approvals)
            await set_policy(
                approvals,
                [
                    {
                        **LEGAL_STEP,
                        "resolve_at": "subject",
                        "deadline_hours": 24,
                        "remind_before_hours": 4,
                        "escalate_to": {"role": "regional_manager", "resolve_at": "root"},
                    }
                ],
            )
            request = await open_request(approvals)
            # Before the deadline the regional manager is not an approver of a legal step.
            assert (await decide(approvals, request["id"], CENTRAL)).status_code == 403
            async with approvals.sessions.begin() as session:
                await session.execute(
                    text(
                        "UPDATE request_steps SET due_at = now() - interval '1 second'"
                        " WHERE request_id = :i"
                    ),
                    {"i": request["id"]},
                )

            async def escalated() -> bool:
                events = await approvals.events("chorus.approvals.approval.escalated")
                return any(e["data"]["request_id"] == request["id"] for e in events)

            await eventually(escalated, within=30)
            step = (await get(approvals, request["id"]))["steps"][0]
            assert step["escalated_at"] is not None
            assert (step["escalate_to_role"], step["escalate_to_district_id"]) == (
                "regional_manager",
                "hq",
            )
            assert approvals.app.state.jobs.runs.get("deadline_sweep", 0) >= 1
            decided = await decide(approvals, request["id"], CENTRAL)
            assert decided.status_code == 201, decided.text
            assert decided.json()["decision"]["via"] == "escalation"


class TestPending:
    async def test_my_pending_approvals(self, approvals: RunningService) -> None:
        await set_policy(approvals, [MANAGER_STEP, {**LEGAL_STEP, "resolve_at": "root"}])
        mine = await open_request(approvals, title="For the manager")
        own = await open_request(approvals, author="francois", title="Francois's own")

        async def pending(headers: dict[str, str]) -> list[tuple[str, str]]:
            response = await approvals.client.get("/approvals/pending", headers=headers)
            assert response.status_code == 200, response.text
            return [(i["request"]["title"], i["step"]["key"]) for i in response.json()["items"]]

        assert await pending(FR_MANAGER) == [("For the manager", "manager")]
        assert await pending(FR_MANAGER_2) == [
            ("For the manager", "manager"),
            ("Francois's own", "manager"),
        ]
        assert await pending(HQ_LEGAL) == []
        assert await pending(DE_MANAGER) == []
        await decide(approvals, mine["id"], FR_MANAGER)
        assert await pending(FR_MANAGER) == []
        assert await pending(HQ_LEGAL) == [("For the manager", "legal")]
        assert own["id"] != mine["id"]


class TestDelegation:
    async def test_a_delegate_decides_for_the_absent_approver(
        self, approvals: RunningService
    ) -> None:
        request = await open_request(approvals)
        dana = as_user("dana", de="viewer")
        assert (await decide(approvals, request["id"], dana)).status_code == 404
        now = datetime.now(UTC)
        delegated = await approvals.client.post(
            "/delegations",
            json={
                "delegate": "dana",
                "starts_at": (now - timedelta(hours=1)).isoformat(),
                "ends_at": (now + timedelta(days=7)).isoformat(),
                "reason": "Holidays",
            },
            headers=FR_MANAGER,
        )
        assert delegated.status_code == 201, delegated.text
        pending = await approvals.client.get("/approvals/pending", headers=dana)
        assert [i["request"]["id"] for i in pending.json()["items"]] == [request["id"]]
        decided = await decide(approvals, request["id"], dana)
        assert decided.status_code == 201, decided.text
        decision = decided.json()["decision"]
        assert (decision["decider"], decision["via"], decision["acting_for"]) == (
            "dana",
            "delegation",
            "francois",
        )

    async def test_a_delegate_cannot_approve_the_delegators_own_content(
        self, approvals: RunningService
    ) -> None:
        request = await open_request(approvals, author="francois")
        now = datetime.now(UTC)
        await approvals.client.post(
            "/delegations",
            json={
                "delegate": "dana",
                "starts_at": (now - timedelta(hours=1)).isoformat(),
                "ends_at": (now + timedelta(days=1)).isoformat(),
            },
            headers=FR_MANAGER,
        )
        refused = await decide(approvals, request["id"], as_user("dana", de="viewer"))
        assert refused.status_code == 403
        assert refused.json()["type"].endswith("/self-approval")


class TestVersions:
    async def test_a_request_keeps_the_policy_version_it_started_with(
        self, approvals: RunningService
    ) -> None:
        await set_policy(approvals, [MANAGER_STEP])
        before = await open_request(approvals)
        await set_policy(approvals, [MANAGER_STEP, {**LEGAL_STEP, "resolve_at": "subject"}])
        after = await open_request(approvals)
        assert [s["key"] for s in before["steps"]] == ["manager"]
        assert [s["key"] for s in after["steps"]] == ["manager", "legal"]
        assert before["policy_versions"][0]["version"] == 1
        assert after["policy_versions"][0]["version"] == 2
        # Deciding the older request still follows the plan it was opened with.
        decided = await decide(approvals, before["id"], FR_MANAGER)
        assert decided.json()["request"]["status"] == "granted"


class TestReminders:
    async def test_a_step_near_its_deadline_is_reminded_once(
        self, approvals: RunningService
    ) -> None:
        await set_policy(
            approvals,
            [{**MANAGER_STEP, "deadline_hours": 48, "remind_before_hours": 4}],
        )
        request = await open_request(approvals)
        async with approvals.sessions.begin() as session:
            assert (await deadlines.sweep(session))["reminded"] == 0
            await session.execute(
                text(
                    "UPDATE request_steps SET due_at = now() + interval '2 hours'"
                    " WHERE request_id = :i"
                ),
                {"i": request["id"]},
            )
        for _ in range(2):
            async with approvals.sessions.begin() as session:
                await deadlines.sweep(session)
        [reminded] = await approvals.events("chorus.approvals.approval.reminded")
        assert reminded["data"]["request_id"] == request["id"]
        assert reminded["data"]["key"] == "manager"
        assert await approvals.events("chorus.approvals.approval.escalated") == []


async def test_a_decision_for_a_position_beyond_any_plan_is_422(
    approvals: RunningService,
) -> None:
    await set_policy(approvals, [MANAGER_STEP])
    request = await open_request(approvals)
    response = await decide(approvals, request["id"], FR_MANAGER, position=2**40)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["loc"] for e in response.json()["errors"]] == [["body", "position"]]
    assert (await get(approvals, request["id"]))["status"] == "open"


async def all_pages(
    service: RunningService, path: str, headers: dict[str, str], **params: Any
) -> list[list[dict[str, Any]]]:
    """Every page of a list, one item per page, following `next_cursor` to the end."""
    pages: list[list[dict[str, Any]]] = []
    cursor = None
    while True:
        query = {**params, "limit": 1, **({"cursor": cursor} if cursor else {})}
        response = await service.client.get(path, params=query, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["items"])
        cursor = body.get("next_cursor")
        if cursor is None:
            return pages


class TestPaging:
    """Each list of requests pages by its keyset: every item once, in the list's order, and
    no cursor after the last page."""

    async def test_requests_page_newest_first(self, approvals: RunningService) -> None:
        await set_policy(approvals, [MANAGER_STEP])
        opened = [(await open_request(approvals, title=f"Post {n}"))["id"] for n in range(3)]
        pages = await all_pages(approvals, "/requests", FR_VIEWER, status="open")
        assert [[item["id"] for item in page] for page in pages] == [
            [opened[2]],
            [opened[1]],
            [opened[0]],
        ]

    async def test_my_pending_approvals_page_oldest_first(self, approvals: RunningService) -> None:
        await set_policy(approvals, [MANAGER_STEP])
        titles = ["First", "Second", "Third"]
        for title in titles:
            await open_request(approvals, title=title)
        pages = await all_pages(approvals, "/approvals/pending", FR_MANAGER)
        assert [[item["request"]["title"] for item in page] for page in pages] == [
            ["First"],
            ["Second"],
            ["Third"],
        ]

    async def test_a_requests_history_pages_oldest_first(self, approvals: RunningService) -> None:
        await set_policy(approvals, [MANAGER_STEP, LEGAL_STEP])
        request = await open_request(approvals)
        decided = await decide(approvals, request["id"], FR_MANAGER)
        assert decided.status_code == 201, decided.text
        pages = await all_pages(approvals, f"/requests/{request['id']}/history", FR_VIEWER)
        assert [[entry["action"] for entry in page] for page in pages] == [
            ["opened"],
            ["decided"],
            ["step_started"],
        ]
