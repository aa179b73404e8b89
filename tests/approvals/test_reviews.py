"""Outside reviewers: an approver of the step invites one to the active step (where its policy
step accepts them); the reviewer sees the request through a single-use link without an
account and decides once; used, expired and revoked links are gone (410), unknown ones 404;
who may invite, and another district's request. What outside answers may not do (bypasses)
is in test_governance.py."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from services.approvals.models import ApprovalRequest, RequestStep
from tests.approvals.factories import (
    CENTRAL,
    DE_MANAGER,
    FR_LEGAL,
    FR_MANAGER,
    FR_VIEWER,
    FR_WRITER,
    PARIS_MANAGER,
)
from tests.kit import RunningService, as_user

pytestmark = pytest.mark.asyncio

SNAPSHOT = {"text": "Spring sale: 30% off everything!", "platforms": ["x", "instagram"]}
REVIEWER = {"reviewer_name": "Olivia Counsel", "reviewer_email": "olivia@Counsel-Firm.example"}


async def open_request(
    service: RunningService,
    district_id: str = "fr",
    steps: tuple[str, ...] = ("Legal review",),
    status: str = "open",
    role: str = "district_manager",
    outside_review: str = "counted",
) -> uuid.UUID:
    """An open request whose first step is active (quorum any) and the others waiting; its
    steps are decided by `role` on the district and count outside reviewers' answers (the
    district's manager, who invites by default, may decide them)."""
    request_id = uuid.uuid4()
    async with service.sessions.begin() as session:
        session.add(
            ApprovalRequest(
                id=request_id,
                subject_kind="post",
                subject_id=uuid.uuid4(),
                district_id=district_id,
                title="Spring sale",
                author="fanny",
                snapshot=SNAPSHOT,
                content_hash="0" * 64,
                policy_versions=[],
                status=status,
                current_position=0,
            )
        )
        await session.flush()
        session.add_all(
            RequestStep(
                request_id=request_id,
                position=position,
                key=f"step-{position}",
                name=name,
                role=role,
                district_id=district_id,
                outside_review=outside_review,
                quorum_mode="any",
                quorum_count=1,
                reasons=[],
                request_author="fanny",
                request_opened_at=datetime.now(UTC),
                status="active" if position == 0 else "waiting",
                approvals=0,
                activated_at=datetime.now(UTC) if position == 0 else None,
            )
            for position, name in enumerate(steps)
        )
    return request_id


async def execute(service: RunningService, sql: str, **params: Any) -> None:
    async with service.sessions.begin() as session:
        await session.execute(text(sql), params)


async def invite(
    service: RunningService,
    request_id: uuid.UUID,
    position: int = 0,
    headers: dict[str, str] = FR_MANAGER,
    expect: int = 201,
    **body: Any,
) -> dict[str, Any]:
    response = await service.client.post(
        f"/requests/{request_id}/steps/{position}/invites",
        json={**REVIEWER, **body},
        headers=headers,
    )
    assert response.status_code == expect, response.text
    result: dict[str, Any] = response.json()
    return result


async def answer(
    service: RunningService, token: str, outcome: str = "approve", comment: str | None = None
) -> Any:
    body: dict[str, Any] = {"outcome": outcome}
    if comment is not None:
        body["comment"] = comment
    return await service.client.post(f"/public/reviews/{token}/decision", json=body)


async def invites_of(service: RunningService, request_id: uuid.UUID) -> list[dict[str, Any]]:
    response = await service.client.get(f"/requests/{request_id}/invites", headers=FR_MANAGER)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def decisions(service: RunningService, request_id: uuid.UUID) -> list[dict[str, Any]]:
    response = await service.client.get(f"/requests/{request_id}", headers=FR_MANAGER)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["decisions"]
    return found


class TestInviteFlow:
    async def test_an_outside_reviewer_decides_through_the_link(
        self, approvals: RunningService
    ) -> None:
        request_id = await open_request(approvals, steps=("Legal review", "Brand review"))
        before = datetime.now(UTC)
        created = await invite(approvals, request_id, expires_in_hours=48)
        token = created["token"]
        assert created["url_path"] == f"/public/reviews/{token}"
        # Absolute, through the gateway (the public base URL's default: the gateway's local URL).
        assert created["url"] == f"http://localhost:8000/api/approvals/public/reviews/{token}"
        assert created["reviewer_email"] == "olivia@counsel-firm.example"
        assert created["reviewer_name"] == "Olivia Counsel"
        assert created["created_by"] == "francois"
        assert created["status"] == "pending"
        assert created["position"] == 0
        expires_at = datetime.fromisoformat(created["expires_at"])
        assert before + timedelta(hours=47) < expires_at < before + timedelta(hours=49)
        # Only the hash is kept.
        stored = await approvals.scalar(
            "SELECT token_hash FROM review_invites WHERE id = :id", id=uuid.UUID(created["id"])
        )
        assert bytes(stored) == hashlib.sha256(token.encode()).digest()
        listed = await invites_of(approvals, request_id)
        assert [i["id"] for i in listed] == [created["id"]]
        assert "token" not in listed[0]
        assert "url_path" not in listed[0]
        assert "url" not in listed[0]

        # The reviewer has no account: no principal header.
        page = await approvals.client.get(created["url_path"])
        assert page.status_code == 200, page.text
        assert page.headers["cache-control"] == "no-store"
        seen = page.json()
        assert seen["title"] == "Spring sale"
        assert seen["snapshot"] == SNAPSHOT
        assert seen["step_name"] == "Legal review"
        assert seen["step_position"] == 0
        assert seen["reviewer_name"] == "Olivia Counsel"
        assert seen["open"] is True
        assert datetime.fromisoformat(seen["expires_at"]) == expires_at

        answered = await answer(approvals, token, comment="Fine with the disclaimer.")
        assert answered.status_code == 201, answered.text
        assert answered.json()["outcome"] == "approve"
        assert answered.json()["comment"] == "Fine with the disclaimer."
        assert answered.json()["request_status"] == "open"

        [decision] = await decisions(approvals, request_id)
        assert decision["decider"] == "external:olivia@counsel-firm.example"
        assert decision["via"] == "external"
        assert decision["outcome"] == "approve"
        request = (await approvals.client.get(f"/requests/{request_id}", headers=FR_MANAGER)).json()
        assert request["status"] == "open"
        assert request["current_position"] == 1
        [decided] = await approvals.events("chorus.approvals.approval.step_decided")
        assert decided["data"]["decider"] == "external:olivia@counsel-firm.example"
        assert decided["data"]["via"] == "external"
        [used] = await invites_of(approvals, request_id)
        assert used["status"] == "used"
        assert used["used_at"] is not None
        history = await approvals.client.get(f"/requests/{request_id}/history", headers=FR_MANAGER)
        actions = [entry["action"] for entry in history.json()["items"]]
        assert "reviewer_invited" in actions
        assert "decided" in actions

    async def test_a_rejection_needs_a_comment_and_closes_the_request(
        self, approvals: RunningService
    ) -> None:
        request_id = await open_request(approvals)
        token = (await invite(approvals, request_id))["token"]
        for body in (
            {"outcome": "reject"},
            {"outcome": "request_changes", "comment": "   "},
            {"outcome": "reject", "comment": "x" * 2001},
            {"outcome": "maybe", "comment": "Hmm"},
            {"outcome": "approve", "decider": "someone-else"},
        ):
            refused = await approvals.client.post(f"/public/reviews/{token}/decision", json=body)
            assert refused.status_code == 422, (body, refused.text)
        assert await decisions(approvals, request_id) == []
        answered = await answer(approvals, token, "reject", "The price claim is not backed.")
        assert answered.status_code == 201, answered.text
        assert answered.json()["request_status"] == "rejected"
        [rejected] = await approvals.events("chorus.approvals.approval.rejected")
        assert rejected["data"]["request_id"] == str(request_id)

    async def test_the_link_works_once(self, approvals: RunningService) -> None:
        request_id = await open_request(approvals, steps=("Legal", "Brand"))
        token = (await invite(approvals, request_id))["token"]
        assert (await answer(approvals, token)).status_code == 201
        again = await answer(approvals, token, "reject", "Changed my mind")
        assert again.status_code == 410, again.text
        assert again.headers["content-type"] == "application/problem+json"
        assert again.json()["type"].endswith("/review-link-gone")
        assert again.json()["reason"] == "used"
        assert (await approvals.client.get(f"/public/reviews/{token}")).status_code == 410
        assert [d["outcome"] for d in await decisions(approvals, request_id)] == ["approve"]

    async def test_two_answers_at_once_record_one_decision(self, approvals: RunningService) -> None:
        request_id = await open_request(approvals, steps=("Legal", "Brand"))
        token = (await invite(approvals, request_id))["token"]
        first, second = await asyncio.gather(
            answer(approvals, token, "approve"),
            answer(approvals, token, "request_changes", "Add the terms"),
        )
        assert sorted([first.status_code, second.status_code]) == [201, 410]
        assert len(await decisions(approvals, request_id)) == 1
        assert await approvals.scalar("SELECT count(*) FROM decisions") == 1

    async def test_each_reviewer_counts_towards_the_quorum(self, approvals: RunningService) -> None:
        request_id = await open_request(approvals)
        await execute(
            approvals,
            "UPDATE request_steps SET quorum_mode = 'count', quorum_count = 2"
            " WHERE request_id = :id",
            id=request_id,
        )
        first = (await invite(approvals, request_id))["token"]
        second = (await invite(approvals, request_id, reviewer_email="agency@brand.example"))[
            "token"
        ]
        assert (await answer(approvals, first)).json()["request_status"] == "open"
        assert (await answer(approvals, second)).json()["request_status"] == "granted"


class TestGoneAndUnknown:
    async def test_an_expired_link_is_gone(self, approvals: RunningService) -> None:
        request_id = await open_request(approvals)
        created = await invite(approvals, request_id)
        await execute(
            approvals,
            "UPDATE review_invites SET expires_at = now() - interval '1 second' WHERE id = :id",
            id=uuid.UUID(created["id"]),
        )
        page = await approvals.client.get(created["url_path"])
        assert page.status_code == 410
        assert page.json()["reason"] == "expired"
        answered = await answer(approvals, created["token"])
        assert answered.status_code == 410
        assert await decisions(approvals, request_id) == []
        [listed] = await invites_of(approvals, request_id)
        assert listed["status"] == "expired"

    async def test_a_revoked_link_is_gone(self, approvals: RunningService) -> None:
        request_id = await open_request(approvals)
        created = await invite(approvals, request_id)
        url = f"/requests/{request_id}/invites/{created['id']}"
        assert (await approvals.client.delete(url, headers=FR_WRITER)).status_code == 403
        assert (await approvals.client.delete(url, headers=DE_MANAGER)).status_code == 404
        assert (await approvals.client.get(created["url_path"])).status_code == 200
        assert (await approvals.client.delete(url, headers=CENTRAL)).status_code == 204
        page = await approvals.client.get(created["url_path"])
        assert page.status_code == 410
        assert page.json()["reason"] == "revoked"
        assert (await answer(approvals, created["token"])).status_code == 410
        assert await decisions(approvals, request_id) == []
        assert (await approvals.client.delete(url, headers=FR_MANAGER)).status_code == 204
        [listed] = await invites_of(approvals, request_id)
        assert listed["status"] == "revoked"
        other = await open_request(approvals)
        elsewhere = f"/requests/{other}/invites/{created['id']}"
        assert (await approvals.client.delete(elsewhere, headers=FR_MANAGER)).status_code == 404
        # A new link for the same reviewer, now that the old one is revoked.
        await invite(approvals, request_id)

    async def test_an_unknown_link_is_not_found(self, approvals: RunningService) -> None:
        request_id = await open_request(approvals)
        await invite(approvals, request_id)
        for token in ("A" * 43, "not-a-token", "A" * 44):
            page = await approvals.client.get(f"/public/reviews/{token}")
            assert page.status_code == 404, (token, page.text)
            assert page.json()["type"].endswith("/review-not-found")
            assert (await answer(approvals, token)).status_code == 404
        assert await decisions(approvals, request_id) == []


class TestWhoAndWhen:
    async def test_who_may_invite(self, approvals: RunningService) -> None:
        request_id = await open_request(approvals, role="regional_manager")
        for headers, status in (
            (FR_WRITER, 403),
            (FR_VIEWER, 403),
            (FR_LEGAL, 403),
            (DE_MANAGER, 404),
            (PARIS_MANAGER, 404),
            (as_user("nobody"), 404),
        ):
            refused = await invite(approvals, request_id, headers=headers, expect=status)
            assert refused["type"].endswith(
                "/invite-needs-eligible-approver"
                if status == 403
                else "/approval-request-not-found"
            )
        assert await approvals.scalar("SELECT count(*) FROM review_invites") == 0
        missing = await invite(approvals, uuid.uuid4(), expect=404)
        assert missing["type"].endswith("/approval-request-not-found")
        unauthenticated = await approvals.client.post(
            f"/requests/{request_id}/steps/0/invites", json=REVIEWER
        )
        assert unauthenticated.status_code == 401
        await invite(approvals, request_id, headers=CENTRAL)
        # A district manager of a team invites on the team's requests.
        paris_request = await open_request(approvals, district_id="fr-paris")
        await invite(approvals, paris_request, headers=PARIS_MANAGER)

    async def test_another_districts_request_is_not_found(self, approvals: RunningService) -> None:
        request_id = await open_request(approvals, district_id="de")
        created = await invite(approvals, request_id, headers=DE_MANAGER)
        for path in (
            f"/requests/{request_id}/invites",
            f"/requests/{request_id}/invites/{created['id']}",
        ):
            response = (
                await approvals.client.get(path, headers=FR_MANAGER)
                if path.endswith("invites")
                else await approvals.client.delete(path, headers=FR_MANAGER)
            )
            assert response.status_code == 404, (path, response.text)
        await invite(approvals, request_id, headers=FR_MANAGER, expect=404)
        assert (await approvals.client.get(created["url_path"])).status_code == 200

    async def test_readers_list_invites(self, approvals: RunningService) -> None:
        request_id = await open_request(approvals, steps=("Legal", "Brand"))
        first = await invite(approvals, request_id)
        second = await invite(approvals, request_id, reviewer_email="agency@brand.example")
        response = await approvals.client.get(
            f"/requests/{request_id}/invites", params={"limit": 1}, headers=FR_VIEWER
        )
        assert response.status_code == 200, response.text
        page = response.json()
        assert [i["id"] for i in page["items"]] == [second["id"]]
        rest = await approvals.client.get(
            f"/requests/{request_id}/invites",
            params={"limit": 1, "cursor": page["next_cursor"]},
            headers=FR_VIEWER,
        )
        assert [i["id"] for i in rest.json()["items"]] == [first["id"]]
        assert rest.json().get("next_cursor") is None
        by_step = await approvals.client.get(
            f"/requests/{request_id}/invites", params={"position": 1}, headers=FR_VIEWER
        )
        assert by_step.json()["items"] == []

    async def test_only_the_active_step_takes_reviewers(self, approvals: RunningService) -> None:
        request_id = await open_request(approvals, steps=("Legal", "Brand"))
        waiting = await invite(approvals, request_id, position=1, expect=409)
        assert waiting["type"].endswith("/step-not-active")
        missing = await invite(approvals, request_id, position=7, expect=404)
        assert missing["type"].endswith("/request-step-not-found")
        closed = await open_request(approvals, status="granted")
        refused = await invite(approvals, closed, expect=409)
        assert refused["type"].endswith("/approval-request-closed")
        assert await approvals.scalar("SELECT count(*) FROM review_invites") == 0

    async def test_one_working_link_per_reviewer_and_step(self, approvals: RunningService) -> None:
        request_id = await open_request(approvals)
        await invite(approvals, request_id)
        twice = await invite(
            approvals, request_id, expect=409, reviewer_email="OLIVIA@counsel-firm.example"
        )
        assert twice["type"].endswith("/review-invite-exists")

    @pytest.mark.parametrize(
        "change",
        [
            {"reviewer_email": "not-an-address"},
            {"reviewer_email": "two@@example.com"},
            {"reviewer_email": "olivia@localhost"},
            {"reviewer_email": "olivia counsel@example.com"},
            {"reviewer_name": ""},
            {"reviewer_name": "Olivia\nCounsel"},
            {"expires_in_hours": 0},
            {"expires_in_hours": 721},
            {"token": "mine"},
        ],
    )
    async def test_invalid_invites_are_refused(
        self, approvals: RunningService, change: dict[str, Any]
    ) -> None:
        request_id = await open_request(approvals)
        refused = await invite(approvals, request_id, expect=422, **change)
        assert refused["type"].endswith("/validation-error")
        assert await approvals.scalar("SELECT count(*) FROM review_invites") == 0

    async def test_no_answer_once_the_step_is_decided(self, approvals: RunningService) -> None:
        request_id = await open_request(approvals, steps=("Legal", "Brand"), role="legal")
        created = await invite(approvals, request_id, headers=FR_LEGAL)
        decided = await approvals.client.post(
            f"/requests/{request_id}/decisions", json={"outcome": "approve"}, headers=FR_LEGAL
        )
        assert decided.status_code == 201, decided.text
        page = await approvals.client.get(created["url_path"])
        assert page.status_code == 200
        assert page.json()["open"] is False
        late = await answer(approvals, created["token"])
        assert late.status_code == 409, late.text
        assert late.json()["type"].endswith("/step-not-active")
        assert [d["decider"] for d in await decisions(approvals, request_id)] == ["louis"]
        [listed] = await invites_of(approvals, request_id)
        assert listed["status"] == "pending"
