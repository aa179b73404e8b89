"""Fixtures of the approvals tests: the service on a fresh database whose district replica
holds a small organisation, as inventory's events would have left it (``factories``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.approvals.factories import seed_districts
from tests.conftest import Infrastructure
from tests.kit import RunningService, running_service


@pytest_asyncio.fixture
async def approvals(infrastructure: Infrastructure) -> AsyncIterator[RunningService]:
    """The approvals service (HTTP only) on a fresh database with the DISTRICTS."""
    async with running_service(infrastructure, "approvals") as service:
        await seed_districts(service)
        yield service
