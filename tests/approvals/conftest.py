"""Fixtures of the approvals tests: the service on a fresh database whose district replica
holds a small organisation, as inventory's events would have left it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from chassis.districts import DistrictEvent, DistrictReplica
from services.approvals.models import districts
from tests.conftest import Infrastructure
from tests.kit import RunningService, as_user, running_service

# hq (region) > fr (district) > fr-paris (team); hq > de (district).
DISTRICTS = (
    {"id": "hq", "name": "Headquarters", "kind": "region", "path": "hq"},
    {"id": "fr", "name": "France", "kind": "district", "parent_id": "hq", "path": "hq.fr"},
    {
        "id": "fr-paris",
        "name": "Paris",
        "kind": "team",
        "parent_id": "fr",
        "path": "hq.fr.fr-paris",
    },
    {"id": "de", "name": "Germany", "kind": "district", "parent_id": "hq", "path": "hq.de"},
)

CENTRAL = as_user("regina", hq="regional_manager")
FR_MANAGER = as_user("francois", fr="district_manager")
FR_MANAGER_2 = as_user("florence", fr="district_manager")
FR_WRITER = as_user("fanny", fr="contributor")
FR_LEGAL = as_user("louis", fr="legal")
HQ_LEGAL = as_user("laura", hq="legal")
HQ_BRAND = as_user("bruno", hq="brand")
PARIS_MANAGER = as_user("paul", **{"fr-paris": "district_manager"})
DE_MANAGER = as_user("dieter", de="district_manager")
FR_VIEWER = as_user("victor", fr="viewer")


async def seed_districts(service: RunningService) -> None:
    replica = DistrictReplica(districts)
    async with service.sessions.begin() as session:
        for district in DISTRICTS:
            await replica.apply(session, DistrictEvent.model_validate(district))


@pytest_asyncio.fixture
async def approvals(infrastructure: Infrastructure) -> AsyncIterator[RunningService]:
    """The approvals service (HTTP only) on a fresh database with the DISTRICTS."""
    async with running_service(infrastructure, "approvals") as service:
        await seed_districts(service)
        yield service
