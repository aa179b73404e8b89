"""The headline flow between calendar and approvals, through real events on the broker only:
a post submitted in calendar opens a request in approvals, an approver grants it, and calendar
schedules the post."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.approvals.factories import FR_MANAGER
from tests.approvals.factories import seed_districts as seed_approvals
from tests.calendar.factories import FR_WRITER, seed_accounts
from tests.calendar.factories import seed_districts as seed_calendar
from tests.chassis.kit import eventually
from tests.conftest import Infrastructure
from tests.kit import running_service

pytestmark = pytest.mark.asyncio


async def test_a_submitted_post_is_approved_and_comes_back_scheduled(
    infrastructure: Infrastructure,
) -> None:
    async with (
        running_service(infrastructure, "calendar", role="all") as calendar,
        running_service(infrastructure, "approvals", role="all") as approvals,
    ):
        await seed_calendar(calendar)
        await seed_approvals(approvals)
        accounts = await seed_accounts(calendar)
        policy = await approvals.client.put(
            "/policies/post",
            params={"district_id": "fr"},
            json={
                "steps": [
                    {"key": "manager", "name": "District manager", "role": "district_manager"},
                    {
                        "key": "legal",
                        "name": "Legal",
                        "role": "legal",
                        "when": {"keywords": ["price"]},
                    },
                ]
            },
            headers=FR_MANAGER,
        )
        assert policy.status_code in (200, 201), policy.text
        made = await calendar.client.post(
            "/posts",
            json={
                "district_id": "fr",
                "title": "Spring launch",
                "text": "Our spring collection is here.",
                "account_ids": [str(accounts.fr_x)],
                "publish_at": (datetime.now(UTC) + timedelta(days=2)).isoformat(),
            },
            headers=FR_WRITER,
        )
        post = made.json()
        submitted = await calendar.client.post(f"/posts/{post['id']}/submit", headers=FR_WRITER)
        assert submitted.status_code == 200, submitted.text

        # Other tests' submissions may be on the shared broker too: look for this post's.
        async def mine() -> list[dict[str, Any]]:
            response = await approvals.client.get(
                "/approvals/pending", params={"limit": 200}, headers=FR_MANAGER
            )
            items: list[dict[str, Any]] = response.json()["items"]
            return [i for i in items if i["request"]["subject_id"] == post["id"]]

        async def opened() -> bool:
            return bool(await mine())

        await eventually(opened, within=60)
        [pending] = await mine()
        assert pending["request"]["subject_id"] == post["id"]
        assert pending["request"]["content_hash"] == post["content_hash"]
        # No price in the text: the keyword-routed legal step is not in the plan.
        assert pending["step"]["key"] == "manager"
        request = (
            await approvals.client.get(f"/requests/{pending['request']['id']}", headers=FR_MANAGER)
        ).json()
        assert [s["key"] for s in request["steps"]] == ["manager"]
        decided = await approvals.client.post(
            f"/requests/{request['id']}/decisions",
            json={"outcome": "approve", "comment": "Lovely"},
            headers=FR_MANAGER,
        )
        assert decided.status_code == 201, decided.text

        async def scheduled() -> bool:
            response = await calendar.client.get(f"/posts/{post['id']}", headers=FR_WRITER)
            return bool(response.json()["status"] == "scheduled")

        await eventually(scheduled, within=60)
        [event] = await calendar.events("chorus.calendar.post.scheduled")
        assert event["data"]["approved_hash"] == post["content_hash"]
