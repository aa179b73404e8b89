"""The accounts posts may target, as the calendar knows them from the inventory."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from chassis.database import SessionDep
from chassis.districts import DistrictNotFound, ScopeDep
from chassis.errors import problem_responses
from chassis.pagination import InvalidCursor, Page, PageDep
from services.calendar.accounts import service
from services.calendar.accounts.schemas import AccountOut

router = APIRouter(tags=["accounts"])


@router.get(
    "/accounts",
    summary="Accounts posts may target",
    responses=problem_responses(DistrictNotFound, InvalidCursor),
)
async def list_accounts(
    session: SessionDep,
    scope: ScopeDep,
    page: PageDep,
    district_id: Annotated[
        str | None, Query(max_length=100, description="That district and those below it")
    ] = None,
    platform: Annotated[str | None, Query(max_length=32)] = None,
    status: Annotated[
        str | None, Query(max_length=32, description="official by default; 'any' for all")
    ] = "official",
) -> Page[AccountOut]:
    """The inventory's accounts in the districts the caller reads, by platform and handle.
    Only official accounts can be targeted; the others are listed with `status=any`."""
    return await service.list_accounts(
        session, scope, page, district_id=district_id, platform=platform, status=status
    )
