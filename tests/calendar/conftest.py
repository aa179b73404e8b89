"""Fixtures of the calendar tests: the service on a fresh database whose read models (the
district replica and the accounts) hold a small organisation, as inventory's events would
have left them. Tests of the read models themselves feed them through the broker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest_asyncio

from chassis.districts import DistrictEvent, DistrictReplica
from services.calendar.accounts.service import AccountEvent, apply_account
from services.calendar.models import districts
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
FR_WRITER = as_user("fanny", fr="contributor")
PARIS_WRITER = as_user("pierre", **{"fr-paris": "contributor"})
DE_MANAGER = as_user("dieter", de="district_manager")
FR_VIEWER = as_user("victor", fr="viewer")


@dataclass(frozen=True)
class Accounts:
    """Accounts of the seeded organisation, by name."""

    fr_x: uuid.UUID
    fr_instagram: uuid.UUID
    paris_x: uuid.UUID
    de_x: uuid.UUID
    fr_rogue: uuid.UUID
    fr_archived: uuid.UUID


async def seed_districts(service: RunningService) -> None:
    replica = DistrictReplica(districts)
    async with service.sessions.begin() as session:
        for district in DISTRICTS:
            await replica.apply(session, DistrictEvent.model_validate(district))


async def seed_account(
    service: RunningService,
    platform: str,
    handle: str,
    district_id: str,
    status: str = "official",
) -> uuid.UUID:
    account_id = uuid.uuid4()
    event = AccountEvent(
        id=account_id,
        platform=platform,
        handle=handle,
        district_id=district_id,
        status=status,
        version=1,
    )
    async with service.sessions.begin() as session:
        await apply_account(session, event, full=True)
    return account_id


async def seed_accounts(service: RunningService) -> Accounts:
    return Accounts(
        fr_x=await seed_account(service, "x", "chorus_fr", "fr"),
        fr_instagram=await seed_account(service, "instagram", "chorus.fr", "fr"),
        paris_x=await seed_account(service, "x", "chorus_paris", "fr-paris"),
        de_x=await seed_account(service, "x", "chorus_de", "de"),
        fr_rogue=await seed_account(service, "x", "fr_fake", "fr", status="rogue"),
        fr_archived=await seed_account(service, "x", "fr_old", "fr", status="archived"),
    )


@pytest_asyncio.fixture
async def calendar(infrastructure: Infrastructure) -> AsyncIterator[RunningService]:
    """The calendar service (HTTP only) on a fresh database with the DISTRICTS."""
    async with running_service(infrastructure, "calendar") as service:
        await seed_districts(service)
        yield service


@pytest_asyncio.fixture
async def accounts(calendar: RunningService) -> Accounts:
    return await seed_accounts(calendar)
