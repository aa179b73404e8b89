from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.conftest import Infrastructure
from tests.kit import RunningService, as_user, running_service

HQ_ADMIN = as_user("regina", hq="regional_manager")

# A small organisation: hq (region) > fr (district) > fr-paris (team); hq > de (district).
DISTRICTS = (
    {"id": "hq", "name": "Headquarters", "kind": "region"},
    {"id": "fr", "name": "France", "kind": "district", "parent_id": "hq"},
    {"id": "fr-paris", "name": "Paris", "kind": "team", "parent_id": "fr"},
    {"id": "de", "name": "Germany", "kind": "district", "parent_id": "hq"},
)


async def seed_districts(service: RunningService) -> None:
    for body in DISTRICTS:
        response = await service.client.post("/districts", json=body, headers=HQ_ADMIN)
        assert response.status_code == 201, response.text


@pytest_asyncio.fixture
async def inventory(infrastructure: Infrastructure) -> AsyncIterator[RunningService]:
    """The inventory service (HTTP only) on a fresh database with the DISTRICTS."""
    async with running_service(infrastructure, "inventory") as service:
        await seed_districts(service)
        yield service


@pytest_asyncio.fixture
async def inventory_worker(infrastructure: Infrastructure) -> AsyncIterator[RunningService]:
    """The same, with its consumers, relay and jobs running (role "all")."""
    async with running_service(infrastructure, "inventory", role="all") as service:
        await seed_districts(service)
        yield service
