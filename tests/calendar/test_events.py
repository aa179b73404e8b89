"""The calendar's consumers on the real broker: the district replica and the accounts read
model fed by inventory's events, approvals' decisions scheduling a post, and the scheduler's
callbacks marking it published."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio

from chassis.districts import DistrictEvent, DistrictReplica
from chassis.events import CloudEvent
from services.calendar.models import districts
from tests.calendar.factories import FR_MANAGER, FR_WRITER, seed_accounts, seed_districts
from tests.chassis.kit import eventually, read_topic
from tests.conftest import Infrastructure
from tests.inventory.factories import HQ_ADMIN
from tests.inventory.factories import seed_districts as seed_inventory
from tests.kit import RunningService, running_service, send

pytestmark = pytest.mark.asyncio

INVENTORY_TOPIC = "chorus.inventory.events"
APPROVALS_TOPIC = "chorus.approvals.events"
WEBHOOKS_TOPIC = "chorus.webhooks.events"
CALENDAR_TOPIC = "chorus.calendar.events"


def inventory_event(aggregate: str, verb: str, data: dict[str, Any]) -> CloudEvent:
    return CloudEvent(
        source="/services/inventory",
        type=f"chorus.inventory.{aggregate}.{verb}",
        subject=str(data["id"]),
        data=data,
    )


@pytest_asyncio.fixture
async def calendar_worker(infrastructure: Infrastructure) -> AsyncIterator[RunningService]:
    """The calendar service with its consumers and relay running."""
    async with running_service(infrastructure, "calendar", role="all") as service:
        yield service


async def paths(service: RunningService) -> dict[str, str]:
    async with service.sessions() as session:
        rows = await session.execute(districts.select())
        return {row.id: str(row.path) for row in rows}


class TestReadModels:
    async def test_districts_and_accounts_arrive_from_inventory(
        self, infrastructure: Infrastructure, calendar_worker: RunningService
    ) -> None:
        account_id = str(uuid.uuid4())
        await send(
            infrastructure,
            INVENTORY_TOPIC,
            inventory_event(
                "district",
                "created",
                {"id": "hq", "name": "HQ", "kind": "region", "parent_id": None, "path": "hq"},
            ),
            inventory_event(
                "district",
                "created",
                {
                    "id": "fr",
                    "name": "France",
                    "kind": "district",
                    "parent_id": "hq",
                    "path": "hq.fr",
                },
            ),
            inventory_event(
                "account",
                "registered",
                {
                    "id": account_id,
                    "platform": "x",
                    "handle": "chorus_fr",
                    "district_id": "fr",
                    "status": "official",
                    "version": 1,
                    "display_name": "Chorus France",
                    "profile_url": "https://x.com/chorus_fr",
                    "owners": [],
                },
            ),
        )

        async def arrived() -> bool:
            count = await calendar_worker.scalar("SELECT count(*) FROM accounts")
            return bool(count) and len(await paths(calendar_worker)) == 2

        await eventually(arrived)
        assert await paths(calendar_worker) == {"hq": "hq", "fr": "hq.fr"}
        targets = await calendar_worker.client.get(
            "/accounts", params={"district_id": "fr"}, headers=FR_WRITER
        )
        assert [a["handle"] for a in targets.json()["items"]] == ["chorus_fr"]

        # A status change, then an older snapshot replayed: the newer version stays.
        await send(
            infrastructure,
            INVENTORY_TOPIC,
            inventory_event(
                "account",
                "status_changed",
                {
                    "id": account_id,
                    "platform": "x",
                    "handle": "chorus_fr",
                    "district_id": "fr",
                    "status": "archived",
                    "previous_status": "official",
                    "version": 2,
                },
            ),
            inventory_event(
                "account",
                "updated",
                {
                    "id": account_id,
                    "platform": "x",
                    "handle": "chorus_fr",
                    "district_id": "fr",
                    "status": "official",
                    "version": 1,
                    "display_name": "Old name",
                },
            ),
            inventory_event(
                "district",
                "renamed",
                {
                    "id": "fr",
                    "name": "République",
                    "kind": "district",
                    "parent_id": "hq",
                    "path": "hq.fr",
                },
            ),
        )

        async def renamed() -> bool:
            name = await calendar_worker.scalar("SELECT name FROM districts WHERE id = 'fr'")
            return bool(name == "République")

        await eventually(renamed)
        row = await calendar_worker.scalar(
            "SELECT status || '/' || version || '/' || display_name FROM accounts"
        )
        assert row == "archived/2/Chorus France"
        none_left = await calendar_worker.client.get("/accounts", headers=FR_WRITER)
        assert none_left.json()["items"] == []


class TestDistrictReplica:
    async def test_a_move_reroots_the_subtree(self, infrastructure: Infrastructure) -> None:
        async with running_service(infrastructure, "calendar") as service:
            await seed_districts(service)
            replica = DistrictReplica(districts)
            async with service.sessions.begin() as session:
                await replica.apply(
                    session,
                    DistrictEvent(
                        id="eu", name="Europe", kind="region", parent_id="hq", path="hq.eu"
                    ),
                )
                await replica.apply(
                    session,
                    DistrictEvent(
                        id="fr", name="France", kind="district", parent_id="eu", path="hq.eu.fr"
                    ),
                )
            assert (await paths(service))["fr-paris"] == "hq.eu.fr.fr-paris"

    async def test_a_child_arriving_before_its_parents_move_is_rerooted(
        self, infrastructure: Infrastructure
    ) -> None:
        async with running_service(infrastructure, "calendar") as service:
            replica = DistrictReplica(districts)
            events = [
                DistrictEvent(id="hq", name="HQ", kind="region", path="hq"),
                # The child, created under fr before fr moved, arrives first.
                DistrictEvent(
                    id="lyon", name="Lyon", kind="team", parent_id="fr", path="hq.fr.lyon"
                ),
                DistrictEvent(id="eu", name="Europe", kind="region", parent_id="hq", path="hq.eu"),
                # fr's creation is lost to compaction; only its move arrives.
                DistrictEvent(
                    id="fr", name="France", kind="district", parent_id="eu", path="hq.eu.fr"
                ),
            ]
            async with service.sessions.begin() as session:
                for event in events:
                    await replica.apply(session, event)
            assert await paths(service) == {
                "hq": "hq",
                "eu": "hq.eu",
                "fr": "hq.eu.fr",
                "lyon": "hq.eu.fr.lyon",
            }


class TestApprovalToPublication:
    async def test_a_granted_approval_on_the_broker_schedules_the_post(
        self, infrastructure: Infrastructure, calendar_worker: RunningService
    ) -> None:
        await seed_districts(calendar_worker)
        accounts = await seed_accounts(calendar_worker)
        client = calendar_worker.client
        publish_at = (datetime.now(UTC) + timedelta(days=2)).isoformat()
        made = await client.post(
            "/posts",
            json={
                "district_id": "fr",
                "title": "Launch",
                "text": "Hello",
                "account_ids": [str(accounts.fr_x)],
                "publish_at": publish_at,
            },
            headers=FR_WRITER,
        )
        post = made.json()
        submitted = await client.post(f"/posts/{post['id']}/submit", headers=FR_WRITER)
        assert submitted.status_code == 200, submitted.text
        await send(
            infrastructure,
            APPROVALS_TOPIC,
            CloudEvent(
                source="/services/approvals",
                type="chorus.approvals.approval.granted",
                subject=str(uuid.uuid4()),
                data={
                    "subject_kind": "post",
                    "subject_id": post["id"],
                    "content_hash": post["content_hash"],
                    "decided_by": "alice",
                },
            ),
        )

        async def status_is(expected: str) -> bool:
            response = await client.get(f"/posts/{post['id']}", headers=FR_WRITER)
            return bool(response.json()["status"] == expected)

        await eventually(lambda: status_is("scheduled"))
        [scheduled] = await calendar_worker.events("chorus.calendar.post.scheduled")
        assert scheduled["data"]["targets"][0]["handle"] == "chorus_fr"

        await send(
            infrastructure,
            WEBHOOKS_TOPIC,
            CloudEvent(
                source="/services/webhooks",
                type="chorus.webhooks.scheduler.post_published",
                subject=post["id"],
                data={
                    "post_id": post["id"],
                    "account_id": str(accounts.fr_x),
                    "external_id": "1789",
                    "permalink": "https://x.com/chorus_fr/status/1789",
                },
            ),
        )
        await eventually(lambda: status_is("published"))
        [published] = await calendar_worker.events("chorus.calendar.post.published")
        assert published["data"]["external_id"] == "1789"
        assert published["data"]["account_id"] == str(accounts.fr_x)


class TestBlackoutOverScheduledPosts:
    async def test_the_hold_reaches_the_broker(
        self, infrastructure: Infrastructure, calendar_worker: RunningService
    ) -> None:
        """A post scheduled by a granted approval on the broker, then a blackout declared over
        it: the post is on hold and post.unscheduled is on the calendar's topic."""
        await seed_districts(calendar_worker)
        accounts = await seed_accounts(calendar_worker)
        client = calendar_worker.client
        at = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
        made = await client.post(
            "/posts",
            json={
                "district_id": "fr",
                "title": "Launch",
                "text": "Hello",
                "account_ids": [str(accounts.fr_x)],
                "publish_at": at.isoformat(),
            },
            headers=FR_WRITER,
        )
        post = made.json()
        submitted = await client.post(f"/posts/{post['id']}/submit", headers=FR_WRITER)
        assert submitted.status_code == 200, submitted.text
        await send(
            infrastructure,
            APPROVALS_TOPIC,
            CloudEvent(
                source="/services/approvals",
                type="chorus.approvals.approval.granted",
                subject=str(uuid.uuid4()),
                data={
                    "subject_kind": "post",
                    "subject_id": post["id"],
                    "content_hash": post["content_hash"],
                    "decided_by": "alice",
                },
            ),
        )

        async def status() -> Any:
            return (await client.get(f"/posts/{post['id']}", headers=FR_WRITER)).json()

        async def scheduled() -> bool:
            return bool((await status())["status"] == "scheduled")

        await eventually(scheduled)
        declared = await client.post(
            "/blackouts",
            json={
                "district_id": "fr",
                "starts_at": (at - timedelta(hours=1)).isoformat(),
                "ends_at": (at + timedelta(hours=1)).isoformat(),
                "reason": "Strike",
            },
            headers=FR_MANAGER,
        )
        assert declared.status_code == 201, declared.text
        held = await status()
        assert (held["status"], held["status_reason"]) == ("approved", "Blackout: Strike.")

        async def relayed() -> bool:
            sent = await calendar_worker.scalar(
                "SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL AND key = :key"
                " AND convert_from(payload, 'UTF8') LIKE '%chorus.calendar.post.unscheduled%'",
                key=post["id"],
            )
            return bool(sent)

        await eventually(relayed)
        # Other tests of the session publish on the same topic: read it all, keep this post's.
        records = await read_topic(
            infrastructure.bootstrap_servers, CALENDAR_TOPIC, expected=10**6, within=3
        )
        on_topic = [
            event
            for event in (json.loads(value) for value, _ in records)
            if event["subject"] == post["id"]
        ]
        assert [e["type"].rsplit(".", 1)[1] for e in on_topic][-1] == "unscheduled"
        unscheduled = on_topic[-1]["data"]
        assert unscheduled["status"] == "approved"
        assert unscheduled["previous_status"] == "scheduled"
        assert unscheduled["blackout"]["id"] == declared.json()["id"]
        assert unscheduled["author"] == "fanny"


class TestInventoryContract:
    async def test_the_real_inventorys_events_feed_the_read_models(
        self, infrastructure: Infrastructure, calendar_worker: RunningService
    ) -> None:
        """Inventory's own events, as its relay publishes them, are what calendar reads."""

        async with running_service(infrastructure, "inventory", role="all") as inventory:
            await seed_inventory(inventory)
            registered = await inventory.client.post(
                "/accounts",
                json={"platform": "x", "handle": "chorus_paris", "district_id": "fr-paris"},
                headers=HQ_ADMIN,
            )
            assert registered.status_code == 201, registered.text
            account_id = registered.json()["id"]
            moved = await inventory.client.post(
                "/districts/fr-paris/move", json={"parent_id": "de"}, headers=HQ_ADMIN
            )
            assert moved.status_code == 200, moved.text

            async def replicated() -> bool:
                rows = await paths(calendar_worker)
                status = await calendar_worker.scalar(
                    "SELECT status FROM accounts WHERE id = :id", id=uuid.UUID(account_id)
                )
                return rows.get("fr-paris") == "hq.de.fr-paris" and status is not None

            await eventually(replicated, within=60)
            assert await paths(calendar_worker) == {
                "hq": "hq",
                "fr": "hq.fr",
                "de": "hq.de",
                "fr-paris": "hq.de.fr-paris",
            }
            archived = await inventory.client.post(
                f"/accounts/{account_id}/status", json={"status": "archived"}, headers=HQ_ADMIN
            )
            assert archived.status_code == 200, archived.text

            async def archived_here() -> bool:
                status = await calendar_worker.scalar(
                    "SELECT status FROM accounts WHERE id = :id", id=uuid.UUID(account_id)
                )
                return bool(status == "archived")

            await eventually(archived_here, within=60)
