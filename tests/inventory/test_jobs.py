"""The detection scans run on their own, as scheduled jobs of a worker process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from tests.chassis.kit import eventually
from tests.conftest import Infrastructure
from tests.kit import as_user, running_service

pytestmark = pytest.mark.asyncio

ADMIN = as_user("regina", hq="regional_manager")
EVERY_SECOND = "* * * * * *"


async def test_scheduled_scans_flag_dormant_and_orphaned_accounts(
    infrastructure: Infrastructure,
) -> None:
    async with running_service(
        infrastructure,
        "inventory",
        role="all",
        dormant_scan_cron=EVERY_SECOND,
        orphaned_scan_cron=EVERY_SECOND,
        duplicate_scan_cron="0 0 1 1 *",
    ) as inventory:
        await inventory.client.post(
            "/districts", json={"id": "hq", "name": "HQ", "kind": "region"}, headers=ADMIN
        )
        created = await inventory.client.post(
            "/accounts",
            json={"platform": "x", "handle": "sleepy", "district_id": "hq", "status": "official"},
            headers=ADMIN,
        )
        account_id = created.json()["id"]
        long_ago = datetime.now(UTC) - timedelta(days=400)
        async with inventory.sessions() as session, session.begin():
            await session.execute(
                text("UPDATE accounts SET created_at = :t WHERE id = :id"),
                {"t": long_ago, "id": account_id},
            )

        async def flagged() -> bool:
            reasons = await inventory.scalar(
                "SELECT array_agg(reason ORDER BY reason) FROM account_flags"
                " WHERE account_id = :id AND resolved_at IS NULL",
                id=account_id,
            )
            return reasons == ["dormant", "orphaned"]

        await eventually(flagged, within=30)
        events = await inventory.events("chorus.inventory.account.flagged")
        assert sorted(e["data"]["reason"] for e in events) == ["dormant", "orphaned"]
        assert inventory.app.state.jobs.runs.get("dormant_scan", 0) >= 1
