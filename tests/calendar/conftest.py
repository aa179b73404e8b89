"""Fixtures of the calendar tests: the service on a fresh database whose read models (the
district replica and the accounts) hold a small organisation, as inventory's events would
have left them. Tests of the read models themselves feed them through the broker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.calendar.factories import Accounts, seed_accounts, seed_districts
from tests.conftest import Infrastructure
from tests.kit import RunningService, running_service


@pytest_asyncio.fixture
async def calendar(infrastructure: Infrastructure) -> AsyncIterator[RunningService]:
    """The calendar service (HTTP only) on a fresh database with the DISTRICTS."""
    async with running_service(infrastructure, "calendar") as service:
        await seed_districts(service)
        yield service


@pytest_asyncio.fixture
async def accounts(calendar: RunningService) -> Accounts:
    return await seed_accounts(calendar)
