"""Detection: near-duplicate, dormant and orphaned accounts flagged once, resolved when the
finding no longer holds, on demand within the caller's districts, and the last activity of an
account from calendar's post.published on the broker."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text

from chassis.consumer import IdempotentConsumer
from chassis.events import CloudEvent
from services.inventory.detection.repository import SCAN_LOCK_NAMESPACE
from services.inventory.detection.schemas import CheckCounts
from services.inventory.detection.service import (
    Scan,
    scan_dormant,
    scan_near_duplicates,
    scan_orphaned,
)
from tests.chassis.kit import eventually
from tests.conftest import Infrastructure
from tests.inventory.factories import HQ_ADMIN, register_account, set_status
from tests.kit import RunningService, as_user

pytestmark = pytest.mark.asyncio

FR_MANAGER = as_user("francois", fr="district_manager")
FR_VIEWER = as_user("vera", fr="viewer")
FLAGGED = "chorus.inventory.account.flagged"
RESOLVED = "chorus.inventory.account.flag_resolved"
OWNER = {"person": "owner", "role": "primary"}


async def register(
    service: RunningService, handle: str, platform: str = "x", **body: Any
) -> dict[str, Any]:
    """An account of fr on x unless `body` says otherwise."""
    return await register_account(
        service, **{"platform": platform, "handle": handle, "district_id": "fr", **body}
    )


async def execute(service: RunningService, sql: str, **params: Any) -> None:
    async with service.sessions() as session, session.begin():
        await session.execute(text(sql), params)


async def age(service: RunningService, account: dict[str, Any], days: int) -> None:
    await execute(
        service,
        "UPDATE accounts SET created_at = now() - make_interval(days => :days) WHERE id = :id",
        days=days,
        id=account["id"],
    )


async def scan(
    service: RunningService, check: Scan, paths: list[str] | None = None
) -> tuple[int, int]:
    async with service.sessions() as session, session.begin():
        counts: CheckCounts = await check(session, service.app.state.settings, paths=paths)
    return counts.flagged, counts.resolved


async def flagged_ids(service: RunningService, headers: dict[str, str] = HQ_ADMIN) -> set[str]:
    response = await service.client.get(
        "/accounts", params={"flagged": "true", "limit": 100}, headers=headers
    )
    assert response.status_code == 200, response.text
    return {a["id"] for a in response.json()["items"]}


async def get_account(service: RunningService, account: dict[str, Any]) -> dict[str, Any]:
    response = await service.client.get(f"/accounts/{account['id']}", headers=HQ_ADMIN)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


class TestNearDuplicates:
    async def test_similar_handles_or_names_on_one_platform_flag_both_once(
        self, inventory: RunningService
    ) -> None:
        a = await register(inventory, "orangefrance", display_name="Orange France")
        b = await register(inventory, "orangefrance2")
        await register(inventory, "orangefrance", platform="instagram")  # another platform
        await register(inventory, "sosh")
        e = await register(inventory, "shop_lyon", display_name="Orange Boutique Lyon Part-Dieu")
        f = await register(inventory, "olyon_store", display_name="Orange Boutique Lyon Part-Dieu")
        gone = await register(inventory, "orangefrance1")
        await set_status(inventory, gone, status="archived")

        assert await scan(inventory, scan_near_duplicates) == (4, 0)
        events = await inventory.events(FLAGGED)
        assert {
            (e["data"]["account_id"], e["data"]["details"]["other_account_id"]) for e in events
        } == {
            (a["id"], b["id"]),
            (b["id"], a["id"]),
            (e["id"], f["id"]),
            (f["id"], e["id"]),
        }
        by_account = {event["subject"]: event["data"] for event in events}
        assert by_account[a["id"]]["reason"] == "near_duplicate"
        assert by_account[a["id"]]["details"]["other_handle"] == "orangefrance2"
        assert by_account[a["id"]]["platform"] == "x"
        assert by_account[a["id"]]["district_id"] == "fr"
        assert by_account[a["id"]]["score"] >= 0.6
        # Names alike, handles not: found through the names.
        assert by_account[e["id"]]["details"]["handle_similarity"] < 0.6
        assert by_account[e["id"]]["details"]["name_similarity"] >= 0.6
        assert await flagged_ids(inventory) == {a["id"], b["id"], e["id"], f["id"]}
        [flag] = (await get_account(inventory, a))["flags"]
        assert flag["reason"] == "near_duplicate"
        assert flag["details"]["other_account_id"] == b["id"]
        audited = await inventory.scalar(
            "SELECT count(*) FROM audit_log WHERE entity_type = 'account' AND action = 'flagged'"
            " AND actor = 'detection'"
        )
        assert audited == 4

        # Again: nothing new, nothing published.
        assert await scan(inventory, scan_near_duplicates) == (0, 0)
        assert len(await inventory.events(FLAGGED)) == 4

        # Linked as duplicate: the pair is known, its flags are resolved.
        await set_status(inventory, b, status="duplicate", duplicate_of=a["id"])
        assert await scan(inventory, scan_near_duplicates) == (0, 2)
        assert {e["subject"] for e in await inventory.events(RESOLVED)} == {a["id"], b["id"]}
        assert await flagged_ids(inventory) == {e["id"], f["id"]}
        # Archived: out of the comparison.
        await set_status(inventory, f, status="archived")
        assert await scan(inventory, scan_near_duplicates) == (0, 2)
        assert await flagged_ids(inventory) == set()
        assert len(await inventory.events(FLAGGED)) == 4
        open_flags = await inventory.scalar(
            "SELECT count(*) FROM account_flags WHERE resolved_at IS NULL"
        )
        assert open_flags == 0

    async def test_the_threshold_comes_from_the_settings(self, inventory: RunningService) -> None:
        await register(inventory, "orange_lyon")
        await register(inventory, "orange_lille")  # about 0.47 alike
        assert await scan(inventory, scan_near_duplicates) == (0, 0)
        strict = inventory.app.state.settings
        lenient = strict.model_copy(update={"duplicate_similarity_threshold": 0.4})
        async with inventory.sessions() as session, session.begin():
            counts = await scan_near_duplicates(session, lenient)
        assert (counts.flagged, counts.resolved) == (2, 0)


class TestDormant:
    async def test_official_accounts_idle_past_their_platforms_limit(
        self, inventory: RunningService
    ) -> None:
        idle = await register(inventory, "idle_one", status="official", owners=[OWNER])
        await age(inventory, idle, 100)
        active = await register(inventory, "active_one", status="official", owners=[OWNER])
        await age(inventory, active, 200)
        await execute(
            inventory,
            "UPDATE accounts SET last_activity_at = now() - interval '10 days' WHERE id = :id",
            id=active["id"],
        )
        pending = await register(inventory, "pending_old")
        await age(inventory, pending, 200)
        slow = await register(
            inventory, "slow_gram", platform="instagram", status="official", owners=[OWNER]
        )
        await age(inventory, slow, 100)
        await execute(
            inventory, "UPDATE platforms SET dormant_after_days = 120 WHERE key = 'instagram'"
        )

        assert await scan(inventory, scan_dormant) == (1, 0)
        [event] = await inventory.events(FLAGGED)
        assert event["subject"] == idle["id"]
        assert event["data"]["reason"] == "dormant"
        assert event["data"]["details"]["dormant_after_days"] == 90
        assert event["data"]["details"]["last_activity_at"] is None
        assert event["data"]["details"]["inactive_since"] is not None
        assert await scan(inventory, scan_dormant) == (0, 0)
        assert len(await inventory.events(FLAGGED)) == 1
        one_open = await inventory.scalar(
            "SELECT count(*) FROM account_flags WHERE reason = 'dormant' AND resolved_at IS NULL"
        )
        assert one_open == 1

        # Stricter Instagram limit: that one becomes dormant too.
        await execute(
            inventory, "UPDATE platforms SET dormant_after_days = 30 WHERE key = 'instagram'"
        )
        assert await scan(inventory, scan_dormant) == (1, 0)
        # Active again: resolved.
        await execute(
            inventory, "UPDATE accounts SET last_activity_at = now() WHERE id = :id", id=idle["id"]
        )
        assert await scan(inventory, scan_dormant) == (0, 1)
        [resolved] = await inventory.events(RESOLVED)
        assert (resolved["subject"], resolved["data"]["reason"]) == (idle["id"], "dormant")
        assert await flagged_ids(inventory) == {slow["id"]}


class TestOrphaned:
    async def test_official_and_dormant_accounts_without_an_active_owner(
        self, inventory: RunningService
    ) -> None:
        nobody = await register(inventory, "nobody_owns", status="official")
        left = await register(
            inventory,
            "owner_left",
            status="official",
            owners=[{"person": "paul", "role": "primary", "active": False}],
        )
        await register(inventory, "well_owned", status="official", owners=[OWNER])
        await register(inventory, "pending_one")
        sleepy = await register(inventory, "sleepy_one", status="official")
        await set_status(inventory, sleepy, status="dormant")

        assert await scan(inventory, scan_orphaned) == (3, 0)
        events = {e["subject"]: e["data"] for e in await inventory.events(FLAGGED)}
        assert set(events) == {nobody["id"], left["id"], sleepy["id"]}
        assert {d["reason"] for d in events.values()} == {"orphaned"}
        assert events[left["id"]]["details"]["inactive_owners"] == ["paul"]
        assert events[sleepy["id"]]["details"]["status"] == "dormant"
        assert await scan(inventory, scan_orphaned) == (0, 0)
        assert len(await inventory.events(FLAGGED)) == 3

        adopted = await inventory.client.patch(
            f"/accounts/{nobody['id']}", json={"owners": [OWNER]}, headers=HQ_ADMIN
        )
        assert adopted.status_code == 200
        await set_status(inventory, left, status="archived")
        assert await scan(inventory, scan_orphaned) == (0, 2)
        assert await flagged_ids(inventory) == {sleepy["id"]}
        assert {e["subject"] for e in await inventory.events(RESOLVED)} == {
            nobody["id"],
            left["id"],
        }


class TestOnDemand:
    async def test_a_manager_scans_only_their_subtree(self, inventory: RunningService) -> None:
        fr = await register(inventory, "fr_orphan", status="official")
        paris = await register(inventory, "paris_orphan", status="official", district_id="fr-paris")
        de = await register(inventory, "de_orphan", status="official", district_id="de")
        french = await register(inventory, "orangefrance")
        german = await register(inventory, "orangefrance2", district_id="de")

        response = await inventory.client.post("/detection/run", json={}, headers=FR_MANAGER)
        assert response.status_code == 200, response.text
        assert response.json() == {
            "counts": {
                "near_duplicates": {"flagged": 0, "resolved": 0},
                "dormant": {"flagged": 0, "resolved": 0},
                "orphaned": {"flagged": 2, "resolved": 0},
            }
        }
        assert {e["subject"] for e in await inventory.events(FLAGGED)} == {fr["id"], paris["id"]}
        assert de["id"] not in await flagged_ids(inventory)

        # The whole organisation: the pair across fr and de is found.
        everywhere = await inventory.client.post(
            "/detection/run", json={"checks": ["near_duplicates"]}, headers=HQ_ADMIN
        )
        assert everywhere.json() == {"counts": {"near_duplicates": {"flagged": 2, "resolved": 0}}}
        # A run over fr alone does not see the German account, so it keeps that pair's flags.
        again = await inventory.client.post(
            "/detection/run",
            json={"checks": ["near_duplicates", "orphaned"], "district_id": "fr"},
            headers=FR_MANAGER,
        )
        assert again.json() == {
            "counts": {
                "near_duplicates": {"flagged": 0, "resolved": 0},
                "orphaned": {"flagged": 0, "resolved": 0},
            }
        }
        assert {french["id"], german["id"]} <= await flagged_ids(inventory)

    @pytest.mark.parametrize(
        ("headers", "body", "status", "problem"),
        [
            (FR_MANAGER, {"district_id": "de"}, 404, "district-not-found"),
            (FR_VIEWER, {}, 403, "forbidden"),
            (FR_VIEWER, {"district_id": "fr"}, 403, "forbidden"),
            (FR_MANAGER, {"checks": []}, 422, "validation-error"),
            (FR_MANAGER, {"checks": ["everything"]}, 422, "validation-error"),
            (FR_MANAGER, {"district_id": "FR!"}, 422, "validation-error"),
        ],
    )
    async def test_refusals(
        self,
        inventory: RunningService,
        headers: dict[str, str],
        body: dict[str, Any],
        status: int,
        problem: str,
    ) -> None:
        await register(inventory, "de_orphan", status="official", district_id="de")
        response = await inventory.client.post("/detection/run", json=body, headers=headers)
        assert response.status_code == status, response.text
        assert response.json()["type"].endswith("/" + problem)
        assert await inventory.events(FLAGGED) == []

    async def test_a_check_already_under_way_is_409(self, inventory: RunningService) -> None:
        await register(inventory, "fr_orphan", status="official")
        # Another transaction (a scheduled run) is scanning for orphans and keeps at it.
        async with inventory.sessions() as other, other.begin():
            await other.execute(
                text("SELECT pg_advisory_xact_lock(:namespace, hashtext('orphaned'))"),
                {"namespace": SCAN_LOCK_NAMESPACE},
            )
            busy = await inventory.client.post(
                "/detection/run", json={"checks": ["orphaned"]}, headers=FR_MANAGER
            )
            assert busy.status_code == 409, busy.text
            assert busy.json()["type"].endswith("/detection-running")
            # Another check is not held up.
            dormant = await inventory.client.post(
                "/detection/run", json={"checks": ["dormant"]}, headers=FR_MANAGER
            )
            assert dormant.status_code == 200
        assert await inventory.events(FLAGGED) == []
        done = await inventory.client.post(
            "/detection/run", json={"checks": ["orphaned"]}, headers=FR_MANAGER
        )
        assert done.json() == {"counts": {"orphaned": {"flagged": 1, "resolved": 0}}}


def post_published(account_id: str, published_at: datetime | None) -> CloudEvent:
    data: dict[str, Any] = {"post_id": str(uuid.uuid4()), "account_id": account_id}
    if published_at is not None:
        data["published_at"] = published_at.isoformat()
    return CloudEvent(
        source="/services/calendar",
        type="chorus.calendar.post.published",
        subject=data["post_id"],
        data=data,
    )


class TestLastActivity:
    async def test_post_published_moves_last_activity_forward_and_wakes_a_dormant_account(
        self, inventory_worker: RunningService, infrastructure: Infrastructure
    ) -> None:
        service = inventory_worker
        quiet = await register(service, "quiet_one", status="official", owners=[OWNER])
        await age(service, quiet, 100)
        assert await scan(service, scan_dormant) == (1, 0)
        [consumer] = [
            c for c in service.app.state.runtime.consumers if c.name.endswith(".calendar")
        ]
        assert isinstance(consumer, IdempotentConsumer)

        published = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        producer = AIOKafkaProducer(bootstrap_servers=infrastructure.bootstrap_servers)
        await producer.start()
        try:
            await producer.send_and_wait(
                "chorus.calendar.events",
                post_published(quiet["id"], published).to_json(),
                key=quiet["id"].encode(),
            )

            async def awake() -> bool:
                account = await get_account(service, quiet)
                return account["last_activity_at"] is not None and account["flags"] == []

            await eventually(awake)
            account = await get_account(service, quiet)
            assert datetime.fromisoformat(account["last_activity_at"]) == published
            [resolved] = await service.events(RESOLVED)
            assert (resolved["subject"], resolved["data"]["reason"]) == (quiet["id"], "dormant")

            # A late event of an older post, a post on an unknown account, one on no account.
            handled = consumer.handled
            for event in (
                post_published(quiet["id"], published - timedelta(days=30)),
                post_published(str(uuid.uuid4()), published),
                CloudEvent(
                    source="/services/calendar",
                    type="chorus.calendar.post.published",
                    subject="p",
                    data={"post_id": "p", "account_id": None},
                ),
            ):
                await producer.send_and_wait(
                    "chorus.calendar.events", event.to_json(), key=event.subject.encode()
                )

            async def all_read() -> bool:
                return consumer.handled == handled + 3

            await eventually(all_read)
        finally:
            await producer.stop()
        account = await get_account(service, quiet)
        assert datetime.fromisoformat(account["last_activity_at"]) == published
        assert consumer.dead_lettered == 0
        assert len(await service.events(RESOLVED)) == 1
        # Active within its platform's limit: no longer dormant.
        assert await scan(service, scan_dormant) == (0, 0)


async def test_the_database_keeps_one_open_flag_per_account_and_reason(
    inventory: RunningService,
) -> None:
    from sqlalchemy.exc import IntegrityError

    created = await inventory.client.post(
        "/accounts",
        json={"platform": "x", "handle": "one_flag", "district_id": "fr"},
        headers=as_user("regina", hq="regional_manager"),
    )
    flag = "INSERT INTO account_flags (account_id, reason) VALUES (:id, 'dormant')"
    async with inventory.sessions() as session, session.begin():
        await session.execute(text(flag), {"id": created.json()["id"]})
    with pytest.raises(IntegrityError):
        async with inventory.sessions() as session, session.begin():
            await session.execute(text(flag), {"id": created.json()["id"]})
