"""Fixtures of the webhooks tests: the service on a fresh database whose district replica holds
a small organisation, with the loopback receivers allow-listed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.conftest import Infrastructure
from tests.kit import RunningService, running_service
from tests.webhooks.factories import LOCAL, seed_districts


@pytest_asyncio.fixture
async def webhooks(infrastructure: Infrastructure) -> AsyncIterator[RunningService]:
    """The webhooks service (HTTP only) on a fresh database with the DISTRICTS."""
    async with running_service(infrastructure, "webhooks", allow_list=LOCAL) as service:
        await seed_districts(service)
        yield service
