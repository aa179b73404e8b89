from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.conftest import Infrastructure
from tests.inventory.factories import seed_districts
from tests.kit import RunningService, running_service


@pytest_asyncio.fixture
async def inventory(infrastructure: Infrastructure) -> AsyncIterator[RunningService]:
    """The inventory service (HTTP only) on a fresh database with the `DISTRICTS`."""
    async with running_service(infrastructure, "inventory") as service:
        await seed_districts(service)
        yield service


@pytest_asyncio.fixture
async def inventory_worker(infrastructure: Infrastructure) -> AsyncIterator[RunningService]:
    """The same, with its consumers, relay and jobs running (role "all")."""
    async with running_service(infrastructure, "inventory", role="all") as service:
        await seed_districts(service)
        yield service
