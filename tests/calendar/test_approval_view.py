"""A post shows its approval request: the request id, the step being decided and who must act,
kept from approvals' events; after changes are requested or a rejection, the approver's
comment is the post's status_reason. Stale events (another request's, an older request's, a
replayed step) change nothing.

The first test runs the approvals service beside calendar: calendar's own post.submitted opens
the request at approvals, and the events approvals writes to its outbox are delivered to
calendar's handlers as its consumer would. The others build approvals' events with its own
event models (tests may import any service), so they are the wire format approvals publishes.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio

from chassis.events import CloudEvent, EventData
from services.approvals.events import (
    ApprovalEscalated,
    ApprovalRejected,
    ApprovalRequested,
    ApprovalStep,
    ApprovalStepDecided,
    ApprovalWithdrawn,
    EscalationTarget,
    StepQuorum,
    catalog,
)
from services.approvals.vocabulary import Outcome, OutsideReviewMode, Via
from services.calendar.posts.handlers import APPROVAL_HANDLERS
from tests.approvals.factories import FR_LEGAL, set_policy
from tests.approvals.factories import FR_MANAGER as FR_APPROVER
from tests.approvals.factories import deliver as deliver_to_approvals
from tests.approvals.factories import seed_districts as seed_approvals_districts
from tests.calendar.factories import FR_WRITER, Accounts
from tests.conftest import Infrastructure
from tests.kit import RunningService, running_service

pytestmark = pytest.mark.asyncio

MANAGER_STEP = {"key": "manager", "name": "District manager", "role": "district_manager"}
LEGAL_STEP = {"key": "legal", "name": "Legal", "role": "legal", "resolve_at": "policy"}


@pytest_asyncio.fixture
async def approvals(infrastructure: Infrastructure) -> AsyncIterator[RunningService]:
    async with running_service(infrastructure, "approvals") as service:
        await seed_approvals_districts(service)
        yield service


def later(days: float = 3) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0).isoformat()


async def submitted_post(calendar: RunningService, accounts: Accounts) -> dict[str, Any]:
    made = await calendar.client.post(
        "/posts",
        json={
            "district_id": "fr",
            "title": "Spring launch",
            "text": "Our spring collection is here.",
            "account_ids": [str(accounts.fr_x)],
            "publish_at": later(),
        },
        headers=FR_WRITER,
    )
    assert made.status_code == 201, made.text
    response = await calendar.client.post(f"/posts/{made.json()['id']}/submit", headers=FR_WRITER)
    assert response.status_code == 200, response.text
    post: dict[str, Any] = response.json()
    return post


async def read(calendar: RunningService, post_id: str) -> dict[str, Any]:
    response = await calendar.client.get(f"/posts/{post_id}", headers=FR_WRITER)
    assert response.status_code == 200, response.text
    post: dict[str, Any] = response.json()
    return post


async def deliver(calendar: RunningService, event: CloudEvent) -> None:
    """Run calendar's handler of the event in one transaction, as its consumer does."""
    async with calendar.sessions.begin() as session:
        await APPROVAL_HANDLERS[event.type](session, event)


class Relay:
    """Delivers to calendar, in order and once each, what approvals wrote to its outbox."""

    def __init__(self, approvals: RunningService, calendar: RunningService) -> None:
        self.approvals, self.calendar = approvals, calendar
        self.delivered: set[str] = set()

    async def __call__(self) -> list[str]:
        verbs = []
        for raw in await self.approvals.events():
            if raw["id"] in self.delivered:
                continue
            self.delivered.add(raw["id"])
            event = CloudEvent.model_validate(raw)
            if event.type in APPROVAL_HANDLERS:
                await deliver(self.calendar, event)
            verbs.append(event.type.rsplit(".", 1)[1])
        return verbs


class TestThroughTheApprovalsService:
    async def test_the_post_follows_its_request_step_by_step(
        self,
        calendar: RunningService,
        accounts: Accounts,
        approvals: RunningService,
    ) -> None:
        await set_policy(approvals, [MANAGER_STEP, LEGAL_STEP])
        post = await submitted_post(calendar, accounts)
        assert post["approval"] is None  # approvals has not opened the request yet
        [submission] = await calendar.events("chorus.calendar.post.submitted")
        await deliver_to_approvals(approvals, CloudEvent.model_validate(submission))
        relay = Relay(approvals, calendar)
        assert await relay() == ["requested"]

        shown = (await read(calendar, post["id"]))["approval"]
        [request] = (
            await approvals.client.get(
                "/requests", params={"subject_id": post["id"]}, headers=FR_APPROVER
            )
        ).json()["items"]
        assert shown["request_id"] == request["id"]
        assert shown["status"] == "open"
        assert shown["step"] == {
            "position": 0,
            "key": "manager",
            "name": "District manager",
            "role": "district_manager",
            "district_id": "fr",
        }
        assert shown["waiting_for"] == [{"role": "district_manager", "district_id": "fr"}]
        assert [s["key"] for s in shown["steps"]] == ["manager", "legal"]

        approved = await approvals.client.post(
            f"/requests/{request['id']}/decisions",
            json={"outcome": "approve"},
            headers=FR_APPROVER,
        )
        assert approved.status_code == 201, approved.text
        assert await relay() == ["step_decided"]
        shown = (await read(calendar, post["id"]))["approval"]
        assert (shown["status"], shown["step"]["key"]) == ("open", "legal")
        assert shown["waiting_for"] == [{"role": "legal", "district_id": "fr"}]

        comment = "Add the #ad disclosure before the link."
        asked = await approvals.client.post(
            f"/requests/{request['id']}/decisions",
            json={"outcome": "request_changes", "comment": comment},
            headers=FR_LEGAL,
        )
        assert asked.status_code == 201, asked.text
        assert await relay() == ["step_decided", "changes_requested"]
        after = await read(calendar, post["id"])
        assert after["status"] == "changes_requested"
        assert after["status_reason"] == comment
        assert after["approval"]["status"] == "changes_requested"
        assert (after["approval"]["step"], after["approval"]["waiting_for"]) == (None, [])

        # Reopening clears the reason; submitting again forgets the closed request until
        # approvals opens the new one (which supersedes nothing: the old one is closed).
        reopened = await calendar.client.post(
            f"/posts/{post['id']}/status", json={"status": "draft"}, headers=FR_WRITER
        )
        assert reopened.json()["status_reason"] is None
        again = await calendar.client.post(f"/posts/{post['id']}/submit", headers=FR_WRITER)
        assert again.json()["approval"] is None
        resubmission = (await calendar.events("chorus.calendar.post.submitted"))[-1]
        await deliver_to_approvals(approvals, CloudEvent.model_validate(resubmission))
        assert await relay() == ["requested"]
        renewed = (await read(calendar, post["id"]))["approval"]
        assert renewed["request_id"] != request["id"]
        assert renewed["step"]["key"] == "manager"


def step(position: int, key: str, role: str) -> ApprovalStep:
    return ApprovalStep(
        position=position,
        key=key,
        name=key.title(),
        role=role,
        district_id="fr",
        quorum=StepQuorum(mode="any", count=1),
        due_at=None,
        reasons=["policy"],
        outside_review=OutsideReviewMode.NONE,
    )


def envelope(request_id: uuid.UUID, data: EventData, *, at: datetime | None = None) -> CloudEvent:
    """The CloudEvent approvals' outbox would carry for `data`."""
    event = catalog.envelope(str(request_id), data, None)
    return event if at is None else event.model_copy(update={"time": at})


def identity(post: dict[str, Any], request_id: uuid.UUID) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "subject_kind": "post",
        "subject_id": uuid.UUID(post["id"]),
        "district_id": "fr",
        "content_hash": post["content_hash"],
    }


def requested(post: dict[str, Any], request_id: uuid.UUID) -> ApprovalRequested:
    return ApprovalRequested(
        **identity(post, request_id),
        title=post["title"],
        author="fanny",
        expires_at=None,
        steps=[step(0, "manager", "district_manager"), step(1, "legal", "legal")],
        policy_versions=[],
        supersedes=None,
    )


def decided(post: dict[str, Any], request_id: uuid.UUID, position: int) -> ApprovalStepDecided:
    return ApprovalStepDecided(
        **identity(post, request_id),
        position=position,
        step="manager" if position == 0 else "legal",
        decider="francois",
        via=Via.GRANT,
        acting_for=None,
        outcome=Outcome.APPROVE,
        comment=None,
        approvals=1,
        quorum=1,
    )


class TestStaleEvents:
    async def test_only_the_latest_request_and_its_active_step_count(
        self, calendar: RunningService, accounts: Accounts
    ) -> None:
        post = await submitted_post(calendar, accounts)
        older, newer = uuid.uuid4(), uuid.uuid4()
        now = datetime.now(UTC)
        await deliver(calendar, envelope(newer, requested(post, newer), at=now))
        # An older request's opening, arriving late, does not replace the newer one.
        await deliver(
            calendar, envelope(older, requested(post, older), at=now - timedelta(seconds=1))
        )
        # Nor do its decisions and its closing move the newer one.
        await deliver(calendar, envelope(older, decided(post, older, 0)))
        await deliver(
            calendar,
            envelope(older, ApprovalWithdrawn(**identity(post, older), reason="post.withdrawn")),
        )
        shown = (await read(calendar, post["id"]))["approval"]
        assert (shown["request_id"], shown["status"]) == (str(newer), "open")
        assert shown["step"]["key"] == "manager"

        await deliver(calendar, envelope(newer, decided(post, newer, 0)))
        # The same step's decision replayed (another event id): the legal step stays active.
        await deliver(calendar, envelope(newer, decided(post, newer, 0)))
        shown = (await read(calendar, post["id"]))["approval"]
        assert shown["step"]["key"] == "legal"
        assert shown["waiting_for"] == [{"role": "legal", "district_id": "fr"}]

    async def test_an_escalation_adds_who_may_decide(
        self, calendar: RunningService, accounts: Accounts
    ) -> None:
        post = await submitted_post(calendar, accounts)
        request_id = uuid.uuid4()
        await deliver(calendar, envelope(request_id, requested(post, request_id)))
        manager = step(0, "manager", "district_manager").model_dump()
        escalation = ApprovalEscalated(
            **{**identity(post, request_id), **manager},
            escalate_to=EscalationTarget(role="regional_manager", district_id="hq"),
        )
        # An escalation of a step no longer active is stale.
        late = ApprovalEscalated(
            **{**identity(post, request_id), **step(1, "legal", "legal").model_dump()},
            escalate_to=EscalationTarget(role="brand", district_id="hq"),
        )
        await deliver(calendar, envelope(request_id, late))
        await deliver(calendar, envelope(request_id, escalation))
        shown = (await read(calendar, post["id"]))["approval"]
        assert shown["waiting_for"] == [
            {"role": "district_manager", "district_id": "fr"},
            {"role": "regional_manager", "district_id": "hq"},
        ]

    async def test_a_request_for_content_no_longer_in_review_is_not_shown(
        self, calendar: RunningService, accounts: Accounts
    ) -> None:
        post = await submitted_post(calendar, accounts)
        edited = await calendar.client.patch(
            f"/posts/{post['id']}", json={"text": "Other words"}, headers=FR_WRITER
        )
        assert edited.json()["status"] == "draft"
        request_id = uuid.uuid4()
        await deliver(calendar, envelope(request_id, requested(post, request_id)))
        assert (await read(calendar, post["id"]))["approval"] is None

    async def test_a_rejection_carries_the_approvers_comment(
        self, calendar: RunningService, accounts: Accounts
    ) -> None:
        post = await submitted_post(calendar, accounts)
        request_id = uuid.uuid4()
        await deliver(calendar, envelope(request_id, requested(post, request_id)))
        rejection = ApprovalRejected(
            **identity(post, request_id),
            decided_by="francois",
            comment="Off brand.",
            step="manager",
        )
        await deliver(calendar, envelope(request_id, rejection))
        after = await read(calendar, post["id"])
        assert (after["status"], after["status_reason"]) == ("rejected", "Off brand.")
        assert after["approval"]["status"] == "rejected"
        assert after["approval"]["waiting_for"] == []
