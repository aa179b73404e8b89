"""Posts: drafting, targets, access by district, submission with lint and blackouts, the
status machine (every illegal transition), approvals' decisions, scheduling, publication
callbacks, and edits after approval."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text, update

from chassis.events import CloudEvent
from services.calendar.accounts.service import UNKNOWN_ACCOUNT
from services.calendar.models import Post
from services.calendar.posts.handlers import APPROVAL_HANDLERS, SCHEDULER_HANDLERS
from services.calendar.posts.service import TRANSITIONS, IllegalTransition, posts
from tests.calendar.factories import (
    CENTRAL,
    DE_MANAGER,
    FR_MANAGER,
    FR_VIEWER,
    FR_WRITER,
    PARIS_WRITER,
    Accounts,
    png,
    seed_accounts,
    seed_districts,
    uploaded,
)
from tests.conftest import Infrastructure
from tests.kit import RunningService, running_service

pytestmark = pytest.mark.asyncio

GRANTED = "chorus.approvals.approval.granted"
REJECTED = "chorus.approvals.approval.rejected"
CHANGES_REQUESTED = "chorus.approvals.approval.changes_requested"
PUBLISHED = "chorus.webhooks.scheduler.post_published"
FAILED = "chorus.webhooks.scheduler.post_failed"

# The status machine as its users state it (the posts module's docstring), written here
# rather than read from the table under test:
#   draft -> in_review -> approved -> scheduled -> published | publish_failed;
#   in_review -> changes_requested -> draft; in_review -> rejected;
#   an edit sends in_review, approved, scheduled and publish_failed back to draft;
#   anything still open may be cancelled;
#   scheduled -> approved puts a post on hold; publish_failed -> scheduled retries.
STATED_MOVES = {
    ("draft", "in_review"),
    ("in_review", "approved"),
    ("approved", "scheduled"),
    ("scheduled", "published"),
    ("scheduled", "publish_failed"),
    ("in_review", "changes_requested"),
    ("changes_requested", "draft"),
    ("in_review", "rejected"),
    ("in_review", "draft"),
    ("approved", "draft"),
    ("scheduled", "draft"),
    ("publish_failed", "draft"),
    *(
        (open_status, "cancelled")
        for open_status in (
            "draft",
            "in_review",
            "changes_requested",
            "approved",
            "scheduled",
            "publish_failed",
        )
    ),
    ("scheduled", "approved"),
    ("publish_failed", "scheduled"),
}
STATUSES = (
    "draft",
    "in_review",
    "changes_requested",
    "approved",
    "scheduled",
    "published",
    "publish_failed",
    "rejected",
    "cancelled",
)
STATED: dict[str, frozenset[str]] = {
    current: frozenset(target for source, target in STATED_MOVES if source == current)
    for current in STATUSES
}
# What a caller may ask for: submit, reopen, cancel, retry scheduling.
CALLER_TARGETS = frozenset({"in_review", "draft", "cancelled", "scheduled"})


def later(days: float = 3) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0).isoformat()


async def draft(
    calendar: RunningService,
    accounts: list[uuid.UUID],
    headers: dict[str, str] = FR_WRITER,
    **body: Any,
) -> dict[str, Any]:
    payload = {
        "district_id": "fr",
        "title": "Spring launch",
        "text": "Our spring collection is here.",
        "account_ids": [str(a) for a in accounts],
        "publish_at": later(),
        "timezone": "Europe/Paris",
        **body,
    }
    response = await calendar.client.post("/posts", json=payload, headers=headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def submit(calendar: RunningService, post_id: str) -> dict[str, Any]:
    response = await calendar.client.post(f"/posts/{post_id}/submit", headers=FR_WRITER)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def get(calendar: RunningService, post_id: str, headers: dict[str, str] = FR_WRITER) -> Any:
    response = await calendar.client.get(f"/posts/{post_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def deliver(calendar: RunningService, event_type: str, **data: Any) -> None:
    """Run the consumer's handler for an event, inside one transaction as the consumer does."""
    event = CloudEvent(
        source="/services/test", type=event_type, subject=str(uuid.uuid4()), data=data
    )
    handler = {**APPROVAL_HANDLERS, **SCHEDULER_HANDLERS}[event_type]
    async with calendar.sessions.begin() as session:
        await handler(session, event)


async def decide(calendar: RunningService, event_type: str, post: dict[str, Any]) -> None:
    await deliver(
        calendar,
        event_type,
        subject_kind="post",
        subject_id=post["id"],
        content_hash=post["content_hash"],
        decided_by="alice",
        comment="ok",
    )


async def force_status(calendar: RunningService, post_id: str, status: str) -> None:
    async with calendar.sessions.begin() as session:
        await session.execute(
            update(Post).where(Post.id == uuid.UUID(post_id)).values(status=status)
        )


class TestDrafting:
    async def test_a_contributor_drafts_on_the_district_calendar(
        self, calendar: RunningService, accounts: Accounts
    ) -> None:
        post = await draft(
            calendar,
            [accounts.fr_x, accounts.fr_instagram],
            variants=[{"platform": "instagram", "text": "Spring is here 🌸 #spring"}],
            assignee="fanny",
            publish_at="2031-03-01T09:30:00+01:00",
        )
        assert post["status"] == "draft"
        assert post["district_id"] == "fr"
        assert post["author"] == "fanny"
        assert sorted(post["account_ids"]) == sorted(
            [str(accounts.fr_x), str(accounts.fr_instagram)]
        )
        assert post["publish_at"] == "2031-03-01T08:30:00Z"
        assert post["local_publish_at"] == "2031-03-01T09:30:00+01:00"
        assert post["allowed_transitions"] == ["cancelled", "in_review"]
        calendars = await calendar.scalar("SELECT count(*) FROM calendars WHERE district_id = 'fr'")
        assert calendars == 1
        history = await calendar.client.get(f"/posts/{post['id']}/history", headers=FR_VIEWER)
        assert [e["action"] for e in history.json()["items"]] == ["created"]

    async def test_a_subdistrict_account_may_be_targeted_from_its_parent(
        self, calendar: RunningService, accounts: Accounts
    ) -> None:
        post = await draft(calendar, [accounts.paris_x])
        assert post["account_ids"] == [str(accounts.paris_x)]

    @pytest.mark.parametrize(
        ("which", "reason"),
        [("fr_rogue", "rogue"), ("fr_archived", "archived"), ("de_x", "unknown")],
    )
    async def test_only_official_accounts_of_the_district_or_below(
        self, calendar: RunningService, accounts: Accounts, which: str, reason: str
    ) -> None:
        account_id = str(getattr(accounts, which))
        payload = {"district_id": "fr", "title": "t", "account_ids": [account_id]}
        response = await calendar.client.post("/posts", json=payload, headers=FR_WRITER)
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["type"].endswith("/target-not-allowed")
        arriving = {"detail": UNKNOWN_ACCOUNT} if reason == "unknown" else {}
        assert body["refused"] == [{"account_id": account_id, "reason": reason, **arriving}]

    async def test_an_unknown_account_may_still_be_arriving_and_reveals_nothing(
        self, calendar: RunningService, accounts: Accounts
    ) -> None:
        """An id calendar has never seen and another district's account get the same entry,
        which says that an account registered moments ago may still be arriving and how to
        wait for it (the Chorus-Consistency header of the registration)."""
        never_seen = str(uuid.uuid4())
        answers = []
        for account_id in (never_seen, str(accounts.de_x)):
            payload = {"district_id": "fr", "title": "t", "account_ids": [account_id]}
            response = await calendar.client.post("/posts", json=payload, headers=FR_WRITER)
            assert response.status_code == 422, response.text
            body = response.json()
            [entry] = body["refused"]
            assert entry["reason"] == "unknown"
            assert "may still be arriving" in entry["detail"]
            assert "Chorus-Consistency" in entry["detail"]
            assert "Chorus-Consistency" in body["detail"]
            answers.append(
                (
                    response.status_code,
                    {k: v for k, v in body.items() if k not in {"refused", "instance"}},
                    {k: v for k, v in entry.items() if k != "account_id"},
                )
            )
        assert answers[0] == answers[1]

    async def test_a_paris_contributor_cannot_target_the_parent_district(
        self, calendar: RunningService, accounts: Accounts
    ) -> None:
        payload = {"district_id": "fr-paris", "title": "t", "account_ids": [str(accounts.fr_x)]}
        response = await calendar.client.post("/posts", json=payload, headers=PARIS_WRITER)
        assert response.status_code == 422
        assert response.json()["refused"][0]["reason"] == "unknown"

    async def test_bad_input_is_refused_at_the_edge(
        self, calendar: RunningService, accounts: Accounts
    ) -> None:
        cases: list[dict[str, Any]] = [
            {"district_id": "fr", "title": ""},
            {"district_id": "fr", "title": "t", "timezone": "Mars/Olympus"},
            {"district_id": "fr", "title": "t", "publish_at": "2031-03-01T09:30:00"},
            {"district_id": "fr", "title": "t", "link": "javascript:alert(1)"},
            {
                "district_id": "fr",
                "title": "t",
                "variants": [{"platform": "x"}, {"platform": "x"}],
            },
            {"title": "t"},
        ]
        for body in cases:
            response = await calendar.client.post("/posts", json=body, headers=FR_WRITER)
            assert response.status_code == 422, (body, response.text)
            assert response.headers["content-type"] == "application/problem+json"

    async def test_the_history_pages_oldest_first_without_gaps_or_repeats(
        self, calendar: RunningService, accounts: Accounts
    ) -> None:
        post = await draft(calendar, [accounts.fr_x])
        for title in ("Second", "Third", "Fourth"):
            edited = await calendar.client.patch(
                f"/posts/{post['id']}", json={"title": title}, headers=FR_WRITER
            )
            assert edited.status_code == 200, edited.text
        pages: list[list[str]] = []
        cursor: str | None = None
        while True:
            response = await calendar.client.get(
                f"/posts/{post['id']}/history",
                params={"limit": 3, **({"cursor": cursor} if cursor else {})},
                headers=FR_VIEWER,
            )
            assert response.status_code == 200, response.text
            body = response.json()
            pages.append([entry["action"] for entry in body["items"]])
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert pages == [["created", "edited", "edited"], ["edited"]]
        another = await calendar.client.get(f"/posts/{post['id']}/history", headers=DE_MANAGER)
        assert another.status_code == 404


class TestAccess:
    async def test_another_districts_post_does_not_exist(
        self, calendar: RunningService, accounts: Accounts
    ) -> None:
        post = await draft(calendar, [accounts.fr_x])
        for method, path, body in (
            ("GET", f"/posts/{post['id']}", None),
            ("PATCH", f"/posts/{post['id']}", {"title": "mine now"}),
            ("POST", f"/posts/{post['id']}/submit", None),
            ("POST", f"/posts/{post['id']}/status", {"status": "cancelled"}),
            ("GET", f"/posts/{post['id']}/history", None),
            ("GET", f"/posts/{post['id']}/lint", None),
        ):
            response = await calendar.client.request(method, path, json=body, headers=DE_MANAGER)
            assert response.status_code == 404, (method, path, response.text)
            assert response.json()["type"].endswith("/post-not-found")
        assert (await get(calendar, post["id"], CENTRAL))["id"] == post["id"]

    async def test_a_viewer_reads_but_does_not_write(
        self, calendar: RunningService, accounts: Accounts
    ) -> None:
        post = await draft(calendar, [accounts.fr_x])
        assert (await get(calendar, post["id"], FR_VIEWER))["title"] == "Spring launch"
        response = await calendar.client.patch(
            f"/posts/{post['id']}", json={"title": "x"}, headers=FR_VIEWER
        )
        assert response.status_code == 403
        payload = {"district_id": "fr", "title": "t"}
        assert (
            await calendar.client.post("/posts", json=payload, headers=FR_VIEWER)
        ).status_code == 403

    async def test_drafting_in_an_unseen_district_is_404(
        self, calendar: RunningService, accounts: Accounts
    ) -> None:
        payload = {"district_id": "de", "title": "t"}
        response = await calendar.client.post("/posts", json=payload, headers=FR_WRITER)
        assert response.status_code == 404
        assert response.json()["type"].endswith("/district-not-found")

    async def test_the_company_calendar_is_written_by_the_central_team_only(
        self, calendar: RunningService, accounts: Accounts
    ) -> None:
        company = await calendar.scalar("SELECT id FROM calendars WHERE district_id IS NULL")
        payload = {
            "calendar_id": str(company),
            "title": "Group results",
            "account_ids": [str(accounts.fr_x), str(accounts.de_x)],
        }
        refused = await calendar.client.post("/posts", json=payload, headers=FR_MANAGER)
        assert refused.status_code == 403
        made = await calendar.client.post("/posts", json=payload, headers=CENTRAL)
        assert made.status_code == 201, made.text
        assert made.json()["district_id"] is None
        # Company posts are read by every district.
        assert (await get(calendar, made.json()["id"], DE_MANAGER))["title"] == "Group results"


class TestSubmitting:
    async def test_submit_emits_what_approvals_routes_on(
        self, calendar: RunningService, accounts: Accounts
    ) -> None:
        post = await draft(
            calendar,
            [accounts.fr_x, accounts.fr_instagram],
            variants=[{"platform": "instagram", "text": "Spring 🌸"}],
        )
        result = await submit(calendar, post["id"])
        assert result["status"] == "in_review"
        assert result["warnings"] == []
        [event] = await calendar.events("chorus.calendar.post.submitted")
        assert event["subject"] == post["id"]
        data = event["data"]
        assert data["subject_kind"] == "post"
        assert data["kind"] == "post"
        assert (data["district_id"], data["district_path"]) == ("fr", "hq.fr")
        assert data["text"] == "Our spring collection is here."
        assert data["platforms"] == ["instagram", "x"]
        assert data["content_hash"] == post["content_hash"]
        assert data["author"] == "fanny"
        assert data["variants"][0]["text"] == "Spring 🌸"

    async def test_a_post_needs_a_future_time_and_targets(
        self, calendar: RunningService, accounts: Accounts
    ) -> None:
        bare = await draft(calendar, [], publish_at=None)
        response = await calendar.client.post(f"/posts/{bare['id']}/submit", headers=FR_WRITER)
        assert response.status_code == 422
        assert response.json()["missing"] == ["publish_at", "account_ids"]
        past = await draft(calendar, [accounts.fr_x], publish_at="2020-01-01T00:00:00Z")
        response = await calendar.client.post(f"/posts/{past['id']}/submit", headers=FR_WRITER)
        assert response.status_code == 422
        assert response.json()["type"].endswith("/not-ready-to-submit")
        assert await calendar.events("chorus.calendar.post.submitted") == []

    async def test_an_account_archived_since_the_draft_blocks_submission(
        self, calendar: RunningService, accounts: Accounts
    ) -> None:
        post = await draft(calendar, [accounts.fr_x])
        async with calendar.sessions.begin() as session:
            await session.execute(
                text("UPDATE accounts SET status = 'archived' WHERE id = :id"),
                {"id": accounts.fr_x},
            )
        response = await calendar.client.post(f"/posts/{post['id']}/submit", headers=FR_WRITER)
        assert response.status_code == 422
        assert response.json()["refused"] == [
            {"account_id": str(accounts.fr_x), "reason": "archived"}
        ]

    async def test_lint_errors_refuse_and_warnings_pass(
        self, calendar: RunningService, accounts: Accounts
    ) -> None:
        rule = await calendar.client.post(
            "/style-rules",
            json={
                "district_id": "fr",
                "kind": "banned_term",
                "severity": "error",
                "params": {"terms": ["guaranteed"]},
            },
            headers=FR_MANAGER,
        )
        assert rule.status_code == 201, rule.text
        warn = await calendar.client.post(
            "/style-rules",
            json={
                "district_id": None,
                "kind": "hashtag_limit",
                "severity": "warning",
                "params": {"max": 1},
            },
            headers=CENTRAL,
        )
        assert warn.status_code == 201, warn.text
        bad = await draft(calendar, [accounts.fr_x], text="Results guaranteed! #a #b")
        response = await calendar.client.post(f"/posts/{bad['id']}/submit", headers=FR_WRITER)
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["type"].endswith("/lint-failed")
        banned = [v for v in body["violations"] if v["kind"] == "banned_term"]
        assert banned[0]["rule_id"] == rule.json()["id"]
        assert banned[0]["severity"] == "error"
        assert (banned[0]["position"]["start"], banned[0]["position"]["end"]) == (8, 18)
        assert (await get(calendar, bad["id"]))["status"] == "draft"

        fine = await draft(calendar, [accounts.fr_x], text="Results! #a #b")
        result = await submit(calendar, fine["id"])
        assert [w["kind"] for w in result["warnings"]] == ["hashtag_limit"]

    async def test_every_post_write_answers_the_post_bare_with_its_warnings(
        self, calendar: RunningService, accounts: Accounts
    ) -> None:
        """Create, edit, submit (both routes) and other status changes answer the post itself,
        with the warnings the write found in `warnings`; reads leave it empty."""
        warn = await calendar.client.post(
            "/style-rules",
            json={
                "district_id": "fr",
                "kind": "hashtag_limit",
                "severity": "warning",
                "params": {"max": 0},
            },
            headers=FR_MANAGER,
        )
        assert warn.status_code == 201, warn.text
        made = await draft(calendar, [accounts.fr_x], text="Spring #sale")
        assert (made["status"], made["warnings"]) == ("draft", [])
        edited = await calendar.client.patch(
            f"/posts/{made['id']}", json={"title": "Spring sale"}, headers=FR_WRITER
        )
        assert edited.status_code == 200, edited.text
        assert (edited.json()["title"], edited.json()["warnings"]) == ("Spring sale", [])

        submitted = await submit(calendar, made["id"])
        assert submitted["id"] == made["id"]
        assert submitted["status"] == "in_review"
        assert [(w["kind"], w["severity"]) for w in submitted["warnings"]] == [
            ("hashtag_limit", "warning")
        ]
        assert (await get(calendar, made["id"]))["warnings"] == []

        reopened = await calendar.client.post(
            f"/posts/{made['id']}/status", json={"status": "draft"}, headers=FR_WRITER
        )
        assert reopened.status_code == 200, reopened.text
        assert (reopened.json()["status"], reopened.json()["warnings"]) == ("draft", [])
        by_status = await calendar.client.post(
            f"/posts/{made['id']}/status", json={"status": "in_review"}, headers=FR_WRITER
        )
        assert by_status.status_code == 200, by_status.text
        assert by_status.json()["status"] == "in_review"
        assert [w["kind"] for w in by_status.json()["warnings"]] == ["hashtag_limit"]

    async def test_the_openapi_document_says_what_warnings_holds(
        self, calendar: RunningService
    ) -> None:
        document = (await calendar.client.get("/openapi.json")).json()
        post_out = document["components"]["schemas"]["PostOut"]
        assert "warnings" in post_out["properties"]
        assert "Reads always leave it empty" in post_out["properties"]["warnings"]["description"]
        for path, method in (
            ("/posts", "post"),
            ("/posts/{post_id}", "patch"),
            ("/posts/{post_id}/submit", "post"),
            ("/posts/{post_id}/status", "post"),
        ):
            ok = document["paths"][path][method]["responses"]
            answered = ok.get("200", ok.get("201"))
            schema = answered["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/PostOut"}, (path, method)

    async def test_a_blackout_refuses_submission(
        self, calendar: RunningService, accounts: Accounts
    ) -> None:
        at = datetime.now(UTC) + timedelta(days=10)
        blackout = await calendar.client.post(
            "/blackouts",
            json={
                "district_id": "fr",
                "starts_at": (at - timedelta(hours=1)).isoformat(),
                "ends_at": (at + timedelta(hours=1)).isoformat(),
                "reason": "Election silence",
            },
            headers=FR_MANAGER,
        )
        assert blackout.status_code == 201, blackout.text
        post = await draft(calendar, [accounts.fr_x], publish_at=at.isoformat())
        response = await calendar.client.post(f"/posts/{post['id']}/submit", headers=FR_WRITER)
        assert response.status_code == 422
        assert [v["kind"] for v in response.json()["violations"]] == ["blackout"]


class TestStatusMachine:
    async def test_every_illegal_caller_transition_is_refused_with_the_allowed_ones(
        self, calendar: RunningService, accounts: Accounts
    ) -> None:
        post = await draft(calendar, [accounts.fr_x])
        for current, allowed in STATED.items():
            await force_status(calendar, post["id"], current)
            for target in sorted(CALLER_TARGETS - allowed):
                response = await calendar.client.post(
                    f"/posts/{post['id']}/status", json={"status": target}, headers=FR_WRITER
                )
                assert response.status_code == 422, (current, target, response.text)
                body = response.json()
                assert body["type"].endswith("/illegal-status-transition"), body
                assert body["current_status"] == current
                assert body["allowed"] == sorted(allowed & CALLER_TARGETS)
                assert (await get(calendar, post["id"]))["status"] == current

    async def test_every_illegal_transition_is_refused_by_the_status_machine(
        self, calendar: RunningService, accounts: Accounts
    ) -> None:
        post = await draft(calendar, [accounts.fr_x])
        statuses = list(STATED)
        refused = 0
        for current in statuses:
            for target in statuses:
                if target in STATED[current]:
                    continue
                async with calendar.sessions() as session, session.begin():
                    row = await session.get(Post, uuid.UUID(post["id"]))
                    assert row is not None
                    row.status = current
                    with pytest.raises(IllegalTransition):
                        await posts.apply_status(session, row, target, "tester")
                    await session.rollback()
                refused += 1
        allowed = len(STATED_MOVES)
        assert refused == len(statuses) ** 2 - allowed
        assert await calendar.events("chorus.calendar.post.cancelled") == []

    async def test_the_status_machine_is_the_one_users_state(self) -> None:
        assert {status: set(targets) for status, targets in TRANSITIONS.items()} == {
            status: set(targets) for status, targets in STATED.items()
        }

    async def test_statuses_callers_cannot_set_are_not_accepted(
        self, calendar: RunningService, accounts: Accounts
    ) -> None:
        post = await draft(calendar, [accounts.fr_x])
        for status in ("approved", "published", "rejected", "bogus"):
            response = await calendar.client.post(
                f"/posts/{post['id']}/status", json={"status": status}, headers=FR_WRITER
            )
            assert response.status_code == 422, status

    async def test_cancel_and_reopen(self, calendar: RunningService, accounts: Accounts) -> None:
        post = await draft(calendar, [accounts.fr_x])
        await submit(calendar, post["id"])
        await decide(calendar, CHANGES_REQUESTED, post)
        assert (await get(calendar, post["id"]))["status"] == "changes_requested"
        reopened = await calendar.client.post(
            f"/posts/{post['id']}/status", json={"status": "draft"}, headers=FR_WRITER
        )
        assert reopened.json()["status"] == "draft"
        cancelled = await calendar.client.post(
            f"/posts/{post['id']}/status",
            json={"status": "cancelled", "comment": "Campaign dropped"},
            headers=FR_WRITER,
        )
        assert cancelled.json()["status"] == "cancelled"
        [event] = await calendar.events("chorus.calendar.post.cancelled")
        assert event["data"]["reason"] == "Campaign dropped"
        edit = await calendar.client.patch(
            f"/posts/{post['id']}", json={"title": "again"}, headers=FR_WRITER
        )
        assert edit.status_code == 409


class TestApprovalAndScheduling:
    async def test_approval_schedules_with_the_full_content(
        self, calendar: RunningService, accounts: Accounts
    ) -> None:
        post = await draft(
            calendar,
            [accounts.fr_x, accounts.fr_instagram],
            link="https://example.com/spring",
            variants=[{"platform": "instagram", "text": "Spring 🌸", "link": None}],
        )
        await submit(calendar, post["id"])
        await decide(calendar, GRANTED, post)
        scheduled = await get(calendar, post["id"])
        assert scheduled["status"] == "scheduled"
        assert scheduled["approved_hash"] == post["content_hash"]
        [approved] = await calendar.events("chorus.calendar.post.approved")
        assert approved["data"]["id"] == post["id"]
        [event] = await calendar.events("chorus.calendar.post.scheduled")
        data = event["data"]
        assert datetime.fromisoformat(data["publish_at"]) == datetime.fromisoformat(
            scheduled["publish_at"]
        )
        assert data["timezone"] == "Europe/Paris"
        targets = {t["platform"]: t for t in data["targets"]}
        assert targets["instagram"]["text"] == "Spring 🌸"
        assert targets["instagram"]["handle"] == "chorus.fr"
        assert targets["x"]["text"] == "Our spring collection is here."
        assert targets["x"]["link"] == "https://example.com/spring"

    async def test_rejection_is_final(self, calendar: RunningService, accounts: Accounts) -> None:
        post = await draft(calendar, [accounts.fr_x])
        await submit(calendar, post["id"])
        await decide(calendar, REJECTED, post)
        rejected = await get(calendar, post["id"])
        assert rejected["status"] == "rejected"
        assert rejected["allowed_transitions"] == []

    async def test_an_expired_approval_returns_the_post_to_draft(
        self, calendar: RunningService, accounts: Accounts
    ) -> None:
        post = await draft(calendar, [accounts.fr_x])
        await submit(calendar, post["id"])
        await decide(calendar, "chorus.approvals.approval.expired", post)
        back = await get(calendar, post["id"])
        assert back["status"] == "draft"
        assert back["status_reason"].startswith("The approval expired")
        assert back["allowed_transitions"] == ["cancelled", "in_review"]

    async def test_a_decision_on_changed_content_is_stale(
        self, calendar: RunningService, accounts: Accounts
    ) -> None:
        post = await draft(calendar, [accounts.fr_x])
        await submit(calendar, post["id"])
        edited = await calendar.client.patch(
            f"/posts/{post['id']}", json={"text": "New words"}, headers=FR_WRITER
        )
        assert edited.json()["status"] == "draft"
        [withdrawn] = await calendar.events("chorus.calendar.post.withdrawn")
        assert withdrawn["data"]["previous_status"] == "in_review"
        await submit(calendar, post["id"])
        await decide(calendar, GRANTED, post)  # approves the old content hash
        assert (await get(calendar, post["id"]))["status"] == "in_review"

    async def test_an_edit_after_approval_returns_to_draft_and_tells_approvals(
        self, calendar: RunningService, accounts: Accounts
    ) -> None:
        post = await draft(calendar, [accounts.fr_x])
        await submit(calendar, post["id"])
        await decide(calendar, GRANTED, post)
        assignee = await calendar.client.patch(
            f"/posts/{post['id']}", json={"assignee": "paul"}, headers=FR_WRITER
        )
        assert assignee.json()["status"] == "scheduled"  # not content: approval still holds
        edited = await calendar.client.patch(
            f"/posts/{post['id']}",
            json={"text": "Changed after approval", "version": assignee.json()["version"]},
            headers=FR_WRITER,
        )
        body = edited.json()
        assert body["status"] == "draft"
        assert body["approved_hash"] is None
        [withdrawn] = await calendar.events("chorus.calendar.post.withdrawn")
        assert withdrawn["data"]["previous_status"] == "scheduled"
        assert withdrawn["data"]["subject_kind"] == "post"
        stale = await calendar.client.patch(
            f"/posts/{post['id']}", json={"title": "x", "version": 1}, headers=FR_WRITER
        )
        assert stale.status_code == 409
        assert stale.json()["current_version"] == body["version"]

    async def test_a_blackout_set_after_submission_holds_the_post(
        self, calendar: RunningService, accounts: Accounts
    ) -> None:
        at = datetime.now(UTC) + timedelta(days=5)
        post = await draft(calendar, [accounts.fr_x], publish_at=at.isoformat())
        await submit(calendar, post["id"])
        blackout = await calendar.client.post(
            "/blackouts",
            json={
                "district_id": None,
                "starts_at": (at - timedelta(hours=2)).isoformat(),
                "ends_at": (at + timedelta(hours=2)).isoformat(),
                "reason": "National mourning",
            },
            headers=CENTRAL,
        )
        assert blackout.status_code == 201, blackout.text
        await decide(calendar, GRANTED, post)
        held = await get(calendar, post["id"])
        assert held["status"] == "approved"
        assert "National mourning" in held["status_reason"]
        [blocked] = await calendar.events("chorus.calendar.post.schedule_blocked")
        assert blocked["data"]["reasons"] == ["Blackout: National mourning."]
        retry = await calendar.client.post(
            f"/posts/{post['id']}/status", json={"status": "scheduled"}, headers=FR_WRITER
        )
        assert retry.status_code == 422
        assert retry.json()["type"].endswith("/scheduling-blocked")
        removed = await calendar.client.delete(
            f"/blackouts/{blackout.json()['id']}", headers=CENTRAL
        )
        assert removed.status_code == 204
        retry = await calendar.client.post(
            f"/posts/{post['id']}/status", json={"status": "scheduled"}, headers=FR_WRITER
        )
        assert retry.json()["status"] == "scheduled"
        assert len(await calendar.events("chorus.calendar.post.scheduled")) == 1


class TestBlackoutAfterScheduling:
    """A blackout declared over posts already scheduled puts them on hold."""

    async def scheduled(
        self, calendar: RunningService, account: uuid.UUID, at: datetime, **body: Any
    ) -> dict[str, Any]:
        headers = body.pop("headers", FR_WRITER)
        post = await draft(calendar, [account], publish_at=at.isoformat(), headers=headers, **body)
        response = await calendar.client.post(f"/posts/{post['id']}/submit", headers=headers)
        assert response.status_code == 200, response.text
        await decide(calendar, GRANTED, post)
        assert (await get(calendar, post["id"], CENTRAL))["status"] == "scheduled"
        return post

    async def test_a_new_blackout_puts_the_scheduled_posts_inside_it_on_hold(
        self, calendar: RunningService, accounts: Accounts
    ) -> None:
        at = (datetime.now(UTC) + timedelta(days=5)).replace(microsecond=0)
        inside = await self.scheduled(calendar, accounts.fr_x, at, assignee="paul")
        paris = await self.scheduled(
            calendar,
            accounts.paris_x,
            at + timedelta(minutes=30),
            district_id="fr-paris",
            headers=PARIS_WRITER,
        )
        after = await self.scheduled(calendar, accounts.fr_x, at + timedelta(hours=2))
        german = await self.scheduled(
            calendar, accounts.de_x, at, district_id="de", headers=DE_MANAGER
        )
        in_review = await draft(calendar, [accounts.fr_instagram], publish_at=at.isoformat())
        await submit(calendar, in_review["id"])

        declared = await calendar.client.post(
            "/blackouts",
            json={
                "district_id": "fr",
                "starts_at": (at - timedelta(hours=1)).isoformat(),
                # Exclusive: the post at this instant stays scheduled.
                "ends_at": (at + timedelta(hours=2)).isoformat(),
                "reason": "Election weekend",
            },
            headers=FR_MANAGER,
        )
        assert declared.status_code == 201, declared.text
        blackout = declared.json()
        assert blackout["posts_put_on_hold"] == 2

        for post in (inside, paris):
            held = await get(calendar, post["id"], FR_MANAGER)
            assert held["status"] == "approved"
            assert held["status_reason"] == "Blackout: Election weekend."
            assert held["approved_hash"] == post["content_hash"]  # the approval still holds
            assert held["allowed_transitions"] == ["cancelled", "draft", "scheduled"]
        for post in (after, german):
            assert (await get(calendar, post["id"], CENTRAL))["status"] == "scheduled"
        assert (await get(calendar, in_review["id"]))["status"] == "in_review"

        unscheduled = await calendar.events("chorus.calendar.post.unscheduled")
        assert sorted(e["subject"] for e in unscheduled) == sorted([inside["id"], paris["id"]])
        event = next(e for e in unscheduled if e["subject"] == inside["id"])["data"]
        assert event["status"] == "approved"
        assert event["previous_status"] == "scheduled"
        assert (event["author"], event["assignee"]) == ("fanny", "paul")
        assert (event["district_id"], event["district_path"]) == ("fr", "hq.fr")
        assert event["hold"] == "blackout"
        assert event["blackout"]["id"] == blackout["id"]
        assert event["reasons"] == ["Blackout: Election weekend."]
        assert datetime.fromisoformat(event["publish_at"]) == at
        # Neither approvals (post.withdrawn) nor a second decision is asked for.
        assert await calendar.events("chorus.calendar.post.withdrawn") == []
        history = await calendar.client.get(f"/posts/{inside['id']}/history", headers=FR_WRITER)
        last = history.json()["items"][-1]
        assert (last["action"], last["from_status"], last["to_status"]) == (
            "unscheduled",
            "scheduled",
            "approved",
        )
        assert last["details"]["blackout_id"] == blackout["id"]

        # The existing retry path: refused while the blackout stands, then scheduled again.
        retry = await calendar.client.post(
            f"/posts/{inside['id']}/status", json={"status": "scheduled"}, headers=FR_WRITER
        )
        assert retry.status_code == 422
        assert retry.json()["type"].endswith("/scheduling-blocked")
        lifted = await calendar.client.delete(f"/blackouts/{blackout['id']}", headers=FR_MANAGER)
        assert lifted.status_code == 204
        retry = await calendar.client.post(
            f"/posts/{inside['id']}/status", json={"status": "scheduled"}, headers=FR_WRITER
        )
        assert retry.status_code == 200, retry.text
        assert (retry.json()["status"], retry.json()["status_reason"]) == ("scheduled", None)
        rescheduled = [
            e
            for e in await calendar.events("chorus.calendar.post.scheduled")
            if e["subject"] == inside["id"]
        ]
        assert len(rescheduled) == 2

    async def test_a_company_wide_blackout_holds_every_districts_posts(
        self, calendar: RunningService, accounts: Accounts
    ) -> None:
        at = (datetime.now(UTC) + timedelta(days=6)).replace(microsecond=0)
        fr = await self.scheduled(calendar, accounts.fr_x, at)
        de = await self.scheduled(calendar, accounts.de_x, at, district_id="de", headers=DE_MANAGER)
        company_calendar = await calendar.scalar(
            "SELECT id FROM calendars WHERE district_id IS NULL"
        )
        company = await self.scheduled(
            calendar,
            accounts.fr_instagram,
            at,
            district_id=None,
            calendar_id=str(company_calendar),
            headers=CENTRAL,
        )
        refused = await calendar.client.post(
            "/blackouts",
            json={
                "district_id": None,
                "starts_at": at.isoformat(),
                "ends_at": (at + timedelta(minutes=1)).isoformat(),
                "reason": "National mourning",
            },
            headers=FR_MANAGER,
        )
        assert refused.status_code == 403
        for post in (fr, de, company):
            assert (await get(calendar, post["id"], CENTRAL))["status"] == "scheduled"
        declared = await calendar.client.post(
            "/blackouts",
            json={
                "district_id": None,
                "starts_at": at.isoformat(),
                "ends_at": (at + timedelta(minutes=1)).isoformat(),
                "reason": "National mourning",
            },
            headers=CENTRAL,
        )
        assert declared.status_code == 201, declared.text
        assert declared.json()["posts_put_on_hold"] == 3
        for post in (fr, de, company):
            held = await get(calendar, post["id"], CENTRAL)
            assert (held["status"], held["status_reason"]) == (
                "approved",
                "Blackout: National mourning.",
            )
        assert len(await calendar.events("chorus.calendar.post.unscheduled")) == 3


class TestPublication:
    async def test_published_on_every_account_then_the_post_is_published(
        self, calendar: RunningService, accounts: Accounts
    ) -> None:
        post = await draft(calendar, [accounts.fr_x, accounts.fr_instagram])
        await submit(calendar, post["id"])
        await decide(calendar, GRANTED, post)
        callback = {"post_id": post["id"], "published_at": "2031-01-01T10:00:00Z"}
        await deliver(
            calendar,
            PUBLISHED,
            **callback,
            account_id=str(accounts.fr_x),
            external_id="x-123",
            permalink="https://x.com/chorus_fr/status/123",
        )
        halfway = await get(calendar, post["id"])
        assert halfway["status"] == "scheduled"
        await deliver(
            calendar,
            PUBLISHED,
            **callback,
            account_id=str(accounts.fr_x),
            external_id="x-123",
        )  # the same callback again changes nothing
        await deliver(
            calendar,
            PUBLISHED,
            **callback,
            account_id=str(accounts.fr_instagram),
            external_id="ig-9",
            permalink="https://instagram.com/p/9",
        )
        done = await get(calendar, post["id"])
        assert done["status"] == "published"
        assert done["published_at"] == "2031-01-01T10:00:00Z"
        publications = {p["platform"]: p for p in done["publications"]}
        assert publications["x"]["external_id"] == "x-123"
        assert publications["instagram"]["permalink"] == "https://instagram.com/p/9"
        events = await calendar.events("chorus.calendar.post.published")
        assert [(e["data"]["account_id"], e["data"]["external_id"]) for e in events] == [
            (str(accounts.fr_x), "x-123"),
            (str(accounts.fr_instagram), "ig-9"),
        ]

    async def test_a_failure_marks_the_post_and_it_can_be_retried(
        self, calendar: RunningService, accounts: Accounts
    ) -> None:
        post = await draft(calendar, [accounts.fr_x])
        await submit(calendar, post["id"])
        await decide(calendar, GRANTED, post)
        await deliver(
            calendar,
            FAILED,
            post_id=post["id"],
            account_id=str(accounts.fr_x),
            error="token expired",
        )
        failed = await get(calendar, post["id"])
        assert failed["status"] == "publish_failed"
        assert failed["publications"][0]["error"] == "token expired"
        [event] = await calendar.events("chorus.calendar.post.publish_failed")
        assert event["data"]["error"] == "token expired"
        retry = await calendar.client.post(
            f"/posts/{post['id']}/status", json={"status": "scheduled"}, headers=FR_WRITER
        )
        assert retry.json()["status"] == "scheduled"
        assert len(await calendar.events("chorus.calendar.post.scheduled")) == 2


class TestCampaignsAndAssets:
    async def test_a_regions_campaign_and_assets_serve_its_districts(
        self, infrastructure: Infrastructure, tmp_path: Path
    ) -> None:
        async with running_service(
            infrastructure, "calendar", asset_dir=tmp_path / "assets"
        ) as calendar:
            await seed_districts(calendar)
            accounts = await seed_accounts(calendar)
            client = calendar.client
            spring = await client.post(
                "/campaigns",
                json={
                    "district_id": "hq",
                    "name": "Spring",
                    "starts_on": "2031-03-01",
                    "ends_on": "2031-05-31",
                    "tags": ["spring", "pricing"],
                },
                headers=CENTRAL,
            )
            assert spring.status_code == 201, spring.text
            german = await client.post(
                "/campaigns",
                json={
                    "district_id": "de",
                    "name": "Oktober",
                    "starts_on": "2031-10-01",
                    "ends_on": "2031-10-31",
                },
                headers=DE_MANAGER,
            )
            assert german.status_code == 201, german.text
            logo = await client.post(
                "/assets",
                files={"file": ("logo.png", png(), "image/png")},
                data={"district_id": "hq", "title": "Group logo", "alt_text": "The logo"},
                headers=CENTRAL,
            )
            assert logo.status_code == 201, logo.text
            asset = logo.json()

            refused = await client.post(
                "/posts",
                json={"district_id": "fr", "title": "t", "campaign_id": german.json()["id"]},
                headers=FR_WRITER,
            )
            assert refused.status_code == 422
            assert refused.json()["reason"] == "unknown"

            post = await draft(
                calendar,
                [accounts.fr_instagram],
                campaign_id=spring.json()["id"],
                media=[{"asset_id": asset["id"]}],
            )
            assert post["expired_assets"] == []
            await submit(calendar, post["id"])
            [submitted] = await calendar.events("chorus.calendar.post.submitted")
            assert submitted["data"]["campaign_tags"] == ["spring", "pricing"]
            await decide(calendar, GRANTED, post)
            [scheduled] = await calendar.events("chorus.calendar.post.scheduled")
            [media] = scheduled["data"]["targets"][0]["media"]
            assert media["url"] == f"/assets/{asset['id']}/content"
            assert (media["sha256"], media["alt_text"]) == (asset["sha256"], "The logo")

            expired = await client.patch(
                f"/assets/{asset['id']}",
                json={"rights_expire_at": "2020-01-01T00:00:00Z"},
                headers=CENTRAL,
            )
            assert expired.status_code == 200, expired.text
            assert (await get(calendar, post["id"]))["expired_assets"] == [asset["id"]]
            used = await client.delete(f"/assets/{asset['id']}", headers=CENTRAL)
            assert used.status_code == 409


class TestAssetRights:
    """An asset whose usage rights end before the publish time: lint warns, submission and
    scheduling refuse."""

    async def test_lint_warns_and_submission_refuses(
        self, infrastructure: Infrastructure, tmp_path: Path
    ) -> None:
        async with running_service(
            infrastructure, "calendar", asset_dir=tmp_path / "assets"
        ) as calendar:
            await seed_districts(calendar)
            accounts = await seed_accounts(calendar)
            publish_at = datetime.now(UTC).replace(microsecond=0) + timedelta(days=10)
            ending = await uploaded(
                calendar,
                png(),
                title="Licensed photo",
                alt_text="A photo",
                rights_expire_at=(publish_at - timedelta(days=5)).isoformat(),
            )
            lasting = await uploaded(
                calendar,
                png(3000),
                title="Own photo",
                alt_text="Ours",
                rights_expire_at=(publish_at + timedelta(days=5)).isoformat(),
            )
            post = await draft(
                calendar,
                [accounts.fr_x, accounts.fr_instagram],
                publish_at=publish_at.isoformat(),
                media=[{"asset_id": lasting["id"]}],
                variants=[
                    {
                        "platform": "instagram",
                        "media": [{"asset_id": lasting["id"]}, {"asset_id": ending["id"]}],
                    }
                ],
            )

            lint = await calendar.client.get(f"/posts/{post['id']}/lint", headers=FR_WRITER)
            assert lint.status_code == 200, lint.text
            report = lint.json()
            assert (report["errors"], report["warnings"]) == (0, 1)
            [warning] = report["violations"]
            assert warning["kind"] == "asset_rights_expired"
            assert warning["severity"] == "warning"
            assert warning["asset_id"] == ending["id"]
            assert warning["rule_id"] is None
            assert warning["platform"] == "instagram"
            assert warning["position"]["field"] == "variants.instagram.media[1]"
            assert "Licensed photo" in warning["message"]

            # The same content linted for another time: no finding once the rights outlast it.
            earlier = await calendar.client.post(
                "/lint",
                json={
                    "district_id": "fr",
                    "subject": {
                        "content": {
                            "title": "t",
                            "text": "x",
                            "media": [{"asset_id": ending["id"]}],
                        },
                        "publish_at": (publish_at - timedelta(days=6)).isoformat(),
                    },
                },
                headers=FR_WRITER,
            )
            assert earlier.status_code == 200, earlier.text
            assert earlier.json()["violations"] == []

            refused = await calendar.client.post(f"/posts/{post['id']}/submit", headers=FR_WRITER)
            assert refused.status_code == 422, refused.text
            body = refused.json()
            assert body["type"].endswith("/lint-failed")
            [error] = body["violations"]
            assert (error["kind"], error["severity"], error["asset_id"]) == (
                "asset_rights_expired",
                "error",
                ending["id"],
            )
            assert (await get(calendar, post["id"]))["status"] == "draft"
            assert await calendar.events("chorus.calendar.post.submitted") == []

            renewed = await calendar.client.patch(
                f"/assets/{ending['id']}",
                json={"rights_expire_at": (publish_at + timedelta(days=1)).isoformat()},
                headers=FR_WRITER,
            )
            assert renewed.status_code == 200, renewed.text
            assert (await submit(calendar, post["id"]))["status"] == "in_review"

    async def test_rights_ending_before_the_publish_time_block_scheduling(
        self, infrastructure: Infrastructure, tmp_path: Path
    ) -> None:
        async with running_service(
            infrastructure, "calendar", asset_dir=tmp_path / "assets"
        ) as calendar:
            await seed_districts(calendar)
            accounts = await seed_accounts(calendar)
            publish_at = datetime.now(UTC).replace(microsecond=0) + timedelta(days=10)
            asset = await uploaded(calendar, png(), title="Licensed photo", alt_text="A photo")
            post = await draft(
                calendar,
                [accounts.fr_x],
                publish_at=publish_at.isoformat(),
                media=[{"asset_id": asset["id"]}],
            )
            await submit(calendar, post["id"])
            # The licence turns out shorter while the post is in review.
            ends = publish_at - timedelta(days=1)
            shortened = await calendar.client.patch(
                f"/assets/{asset['id']}",
                json={"rights_expire_at": ends.isoformat()},
                headers=FR_WRITER,
            )
            assert shortened.status_code == 200, shortened.text

            await decide(calendar, GRANTED, post)
            held = await get(calendar, post["id"])
            assert held["status"] == "approved"
            reason = (
                f"Asset Licensed photo ({asset['id']}): usage rights end at"
                f" {ends:%Y-%m-%d %H:%M} UTC, before the publish time."
            )
            assert held["status_reason"] == reason
            assert await calendar.events("chorus.calendar.post.scheduled") == []
            [blocked] = await calendar.events("chorus.calendar.post.schedule_blocked")
            assert blocked["subject"] == post["id"]
            assert blocked["data"]["reasons"] == [reason]

            retry = await calendar.client.post(
                f"/posts/{post['id']}/status", json={"status": "scheduled"}, headers=FR_WRITER
            )
            assert retry.status_code == 422
            assert retry.json()["type"].endswith("/scheduling-blocked")
            assert retry.json()["reasons"] == [reason]

            await calendar.client.patch(
                f"/assets/{asset['id']}", json={"rights_expire_at": None}, headers=FR_WRITER
            )
            retry = await calendar.client.post(
                f"/posts/{post['id']}/status", json={"status": "scheduled"}, headers=FR_WRITER
            )
            assert retry.status_code == 200, retry.text
            assert retry.json()["status"] == "scheduled"

    async def test_rights_shortened_after_scheduling_put_the_post_on_hold(
        self, infrastructure: Infrastructure, tmp_path: Path
    ) -> None:
        async with running_service(
            infrastructure, "calendar", asset_dir=tmp_path / "assets"
        ) as calendar:
            await seed_districts(calendar)
            accounts = await seed_accounts(calendar)
            publish_at = datetime.now(UTC).replace(microsecond=0) + timedelta(days=10)
            # A region's asset, used by a district's post.
            asset = await uploaded(
                calendar,
                png(),
                title="Licensed photo",
                alt_text="A",
                district_id="hq",
                headers=CENTRAL,
            )
            post = await draft(
                calendar,
                [accounts.fr_x],
                publish_at=publish_at.isoformat(),
                media=[{"asset_id": asset["id"]}],
            )
            await submit(calendar, post["id"])
            await decide(calendar, GRANTED, post)
            assert (await get(calendar, post["id"]))["status"] == "scheduled"

            later_end = await calendar.client.patch(
                f"/assets/{asset['id']}",
                json={"rights_expire_at": (publish_at + timedelta(days=1)).isoformat()},
                headers=CENTRAL,
            )
            assert later_end.status_code == 200, later_end.text
            assert (await get(calendar, post["id"]))["status"] == "scheduled"

            ends = publish_at - timedelta(hours=1)
            shortened = await calendar.client.patch(
                f"/assets/{asset['id']}",
                json={"rights_expire_at": ends.isoformat()},
                headers=CENTRAL,
            )
            assert shortened.status_code == 200, shortened.text
            held = await get(calendar, post["id"])
            reason = (
                f"Asset Licensed photo ({asset['id']}): usage rights end at"
                f" {ends:%Y-%m-%d %H:%M} UTC, before the publish time."
            )
            assert (held["status"], held["status_reason"]) == ("approved", reason)
            [event] = await calendar.events("chorus.calendar.post.unscheduled")
            assert event["subject"] == post["id"]
            assert event["data"]["hold"] == "asset_rights"
            assert event["data"]["asset"]["id"] == asset["id"]
            assert event["data"]["reasons"] == [reason]
            assert event["data"]["author"] == "fanny"


@pytest.mark.parametrize("field", ["title", "text", "media", "variants"])
async def test_an_edit_that_nulls_required_content_is_422(
    calendar: RunningService, accounts: Accounts, field: str
) -> None:
    post = await draft(calendar, [accounts.fr_x])
    response = await calendar.client.patch(
        f"/posts/{post['id']}", json={field: None}, headers=FR_WRITER
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["loc"] for e in response.json()["errors"]] == [["body", field]]
    assert (await get(calendar, post["id"]))["version"] == post["version"]


# At the ends of what PostgreSQL and Python hold: the first would overflow converting to UTC,
# the second is stored as -infinity and read back without its offset.
FAR_INSTANTS = ["0001-01-01T00:30:00+01:00", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59-01:00"]


@pytest.mark.parametrize("instant", FAR_INSTANTS)
@pytest.mark.parametrize("field", ["publish_at", "due_at"])
async def test_a_time_outside_the_years_planned_is_422(
    calendar: RunningService, accounts: Accounts, field: str, instant: str
) -> None:
    payload = {"district_id": "fr", "title": "t", "account_ids": [str(accounts.fr_x)]}
    response = await calendar.client.post(
        "/posts", json={**payload, field: instant}, headers=FR_WRITER
    )
    assert response.status_code == 422, response.text
    assert [e["loc"] for e in response.json()["errors"]] == [["body", field]]
    post = await draft(calendar, [accounts.fr_x])
    response = await calendar.client.patch(
        f"/posts/{post['id']}", json={field: instant}, headers=FR_WRITER
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert await calendar.scalar("SELECT count(*) FROM posts") == 1
