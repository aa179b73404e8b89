"""Consistency tokens (``chassis.consistency``): a write names the events it published, and a
request to another service carrying that name waits, bounded, until they are applied there.

The services run as real apps on real databases; the consumer's work is played by inserting
the inbox row it would insert, so the waits are deterministic. The cross-service round trip
through the gateway of real processes is in ``tests/e2e/test_consistency.py``."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from sqlalchemy import insert

from chassis.consistency import (
    HEADER,
    MAX_EVENTS,
    InvalidConsistencyToken,
    decode_token,
    encode_token,
    record_published,
)
from chassis.districts import DISTRICT_CREATED
from services.approvals.models import messaging as approvals_messaging
from tests.chassis.kit import eventually
from tests.conftest import Infrastructure
from tests.inventory.factories import HQ_ADMIN, seed_districts
from tests.kit import RunningService, as_user, running_service

CENTRAL = as_user("regina", hq="regional_manager")


@pytest_asyncio.fixture
async def inventory(infrastructure: Infrastructure) -> AsyncIterator[RunningService]:
    async with running_service(infrastructure, "inventory") as service:
        await seed_districts(service)
        yield service


@pytest_asyncio.fixture
async def approvals(infrastructure: Infrastructure) -> AsyncIterator[RunningService]:
    """Approvals serving HTTP only: nothing consumes, so only the test applies events."""
    async with running_service(
        infrastructure, "approvals", consistency_wait_seconds=0.3
    ) as service:
        yield service


def token_of(*events: tuple[str, uuid.UUID]) -> str:
    return encode_token(list(events))


async def applied(approvals: RunningService, event_id: uuid.UUID, event_type: str) -> None:
    """The inbox row approvals' inventory consumer writes when it applies the event."""
    prefix = approvals.app.state.settings.consumer_group_prefix
    async with approvals.sessions() as session, session.begin():
        await session.execute(
            insert(approvals_messaging.inbox).values(
                consumer=f"{prefix}.inventory", event_id=event_id, event_type=event_type
            )
        )


class TestTheToken:
    def test_it_names_events_and_reads_back(self) -> None:
        events = [(DISTRICT_CREATED, uuid.uuid4()), ("chorus.inventory.x.y", uuid.uuid4())]
        token = encode_token(events)
        assert token.startswith("1.")
        assert decode_token(token) == events

    @pytest.mark.parametrize(
        "token",
        [
            "2.e30",  # another version
            "garbage",
            "1.!!!",
            "1." + base64.urlsafe_b64encode(b"[1, 2]").decode(),
            "1." + base64.urlsafe_b64encode(json.dumps([["t", "not-a-uuid"]]).encode()).decode(),
            "1." + "A" * 9000,
        ],
    )
    def test_anything_else_is_refused(self, token: str) -> None:
        with pytest.raises(InvalidConsistencyToken):
            decode_token(token)

    def test_it_names_at_most_the_bound(self) -> None:
        many = [("t", uuid.uuid4()) for _ in range(MAX_EVENTS + 1)]
        with pytest.raises(InvalidConsistencyToken):
            decode_token(encode_token(many))

    @pytest.mark.asyncio
    async def test_a_session_keeps_only_the_last_events(self, inventory: RunningService) -> None:
        events = [("t", uuid.uuid4()) for _ in range(MAX_EVENTS + 10)]
        async with inventory.sessions() as session:
            record_published(session, events[:10])
            record_published(session, events[10:])
            assert list(session.info["chorus.published"]) == events[-MAX_EVENTS:]


class TestWrites:
    @pytest.mark.asyncio
    async def test_a_write_names_the_events_it_committed(self, inventory: RunningService) -> None:
        response = await inventory.client.post(
            "/districts",
            json={"id": "es", "name": "Spain", "kind": "district", "parent_id": "hq"},
            headers=HQ_ADMIN,
        )
        assert response.status_code == 201, response.text
        [created] = [
            e
            for e in await inventory.events("chorus.inventory.district.created")
            if e["data"]["id"] == "es"
        ]
        assert decode_token(response.headers[HEADER]) == [
            (created["type"], uuid.UUID(created["id"]))
        ]

    @pytest.mark.asyncio
    async def test_a_read_or_a_refused_write_names_nothing(self, inventory: RunningService) -> None:
        read = await inventory.client.get("/districts", headers=HQ_ADMIN)
        assert read.status_code == 200
        assert HEADER not in read.headers
        refused = await inventory.client.post(
            "/districts",
            json={"id": "fr", "name": "Again", "kind": "district", "parent_id": "hq"},
            headers=HQ_ADMIN,
        )
        assert refused.status_code == 409, refused.text
        assert HEADER not in refused.headers


class TestWaits:
    @pytest.mark.asyncio
    async def test_a_request_waits_for_an_event_the_service_consumes(
        self, approvals: RunningService
    ) -> None:
        event_id = uuid.uuid4()
        token = token_of((DISTRICT_CREATED, event_id))
        late = await approvals.client.get("/policies", headers={**CENTRAL, HEADER: token})
        assert late.status_code == 503, late.text
        assert late.headers["content-type"] == "application/problem+json"
        assert late.headers["retry-after"] == "1"
        assert late.json()["type"].endswith("/not-yet-consistent")
        assert late.json()["pending_events"] == [str(event_id)]
        assert late.headers["server-timing"].startswith("consistency;dur=")

        await applied(approvals, event_id, DISTRICT_CREATED)
        served = await approvals.client.get("/policies", headers={**CENTRAL, HEADER: token})
        assert served.status_code == 200, served.text
        assert float(served.headers["server-timing"].split("dur=")[1]) < 300

    @pytest.mark.asyncio
    async def test_events_the_service_does_not_consume_cost_nothing(
        self, approvals: RunningService
    ) -> None:
        token = token_of(("chorus.calendar.campaign.created", uuid.uuid4()))
        served = await approvals.client.get("/policies", headers={**CENTRAL, HEADER: token})
        assert served.status_code == 200, served.text
        assert "server-timing" not in served.headers

    @pytest.mark.asyncio
    async def test_a_damaged_token_is_a_400(self, approvals: RunningService) -> None:
        refused = await approvals.client.get("/policies", headers={**CENTRAL, HEADER: "1.%%"})
        assert refused.status_code == 400, refused.text
        assert refused.json()["type"].endswith("/invalid-consistency-token")

    @pytest.mark.asyncio
    async def test_a_district_the_replica_lacks_says_it_may_be_arriving(
        self, approvals: RunningService
    ) -> None:
        missing = await approvals.client.get(
            "/policies/effective",
            params={"district_id": "es", "subject_kind": "post"},
            headers=CENTRAL,
        )
        assert missing.status_code == 404, missing.text
        assert "may still be arriving" in missing.json()["detail"]


@pytest.mark.asyncio
async def test_a_worker_is_ready_once_its_consumers_have_joined(
    infrastructure: Infrastructure,
) -> None:
    """Readiness waits for group membership: before it, a write elsewhere would reach the
    service only after the join, and a token would time out for a reason no one can see."""
    async with running_service(infrastructure, "approvals", role="all") as service:
        consumers = service.app.state.runtime.consumers
        assert consumers
        first = await service.client.get("/readyz")
        if first.status_code == 503:
            assert first.json()["checks"]["background"].startswith("joining: ")

        async def ready() -> bool:
            return (await service.client.get("/readyz")).status_code == 200

        await eventually(ready, within=30)
        assert all(consumer.joined.is_set() for consumer in consumers)
