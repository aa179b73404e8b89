from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import StringConstraints

from chassis.errors import problem_responses
from chassis.principal import PrincipalDep
from chassis.query import CommaSeparated
from services.inventory.availability.rate_limit import CheckLimiter, ChecksRateLimited
from services.inventory.availability.schemas import (
    MAX_PLATFORMS_PER_CHECK,
    PLATFORM_KEY_PATTERN,
    Availability,
)
from services.inventory.availability.service import (
    AvailabilityForbidden,
    availability,
)
from services.inventory.platforms import MAX_HANDLE_LENGTH, UnknownPlatform
from services.inventory.settings import InventorySettings

router = APIRouter(tags=["availability"])

PlatformKey = Annotated[str, StringConstraints(pattern=PLATFORM_KEY_PATTERN)]


@router.get(
    "/availability",
    responses=problem_responses(UnknownPlatform, AvailabilityForbidden, ChecksRateLimited),
)
async def check_availability(
    request: Request,
    principal: PrincipalDep,
    handle: Annotated[
        str,
        Query(min_length=1, max_length=MAX_HANDLE_LENGTH, description="The wanted handle"),
    ],
    platform: Annotated[
        CommaSeparated[PlatformKey] | None,
        Query(
            max_length=MAX_PLATFORMS_PER_CHECK,
            description="Platform keys; every known platform when absent",
        ),
    ] = None,
) -> Availability:
    """Is `handle` to be had on each platform? Per platform: "invalid" when the handle breaks
    the platform's rules; `registered` when an account with that handle is in the inventory
    (with its id when it is in a district the caller can read); and the probe of the profile
    URL: "taken" (200), "free" (404 or 410) or "unknown" (anything else, a redirect away from
    the profile, a timeout, a connection error) with the reason. Each user may run
    `INVENTORY_AVAILABILITY_CHECKS_PER_MINUTE` checks a minute (per web process); past that,
    429 with `Retry-After`."""
    settings: InventorySettings = request.app.state.settings
    _limiter(request, settings).acquire(principal.sub)
    return await availability.check(
        request.app.state.session_factory, principal, handle, platform or [], settings
    )


def _limiter(request: Request, settings: InventorySettings) -> CheckLimiter:
    """The app's limiter (one per app, so per process), made on first use."""
    limiter: CheckLimiter | None = getattr(request.app.state, "availability_limiter", None)
    if limiter is None:
        limiter = CheckLimiter(settings.availability_checks_per_minute)
        request.app.state.availability_limiter = limiter
    return limiter
