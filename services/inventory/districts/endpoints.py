from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from chassis.database import SessionDep
from chassis.districts import DistrictNotFound, ScopeDep
from chassis.errors import Forbidden, problem_responses
from chassis.pagination import InvalidCursor, Page, PageDep
from chassis.principal import DISTRICT_ID_PATTERN
from services.inventory.districts.schemas import (
    DistrictCreate,
    DistrictMove,
    DistrictOut,
    DistrictRename,
)
from services.inventory.districts.service import (
    DistrictExists,
    InvalidTree,
    districts,
)

router = APIRouter(prefix="/districts", tags=["districts"])

# The `district_id` query parameter of the lists of accounts, requests and takedown cases
# (the name calendar and approvals give the same filter).
DistrictFilter = Annotated[
    str | None,
    Query(pattern=DISTRICT_ID_PATTERN, description="This district and everything below it"),
]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(Forbidden, DistrictNotFound, DistrictExists, InvalidTree),
)
async def create_district(
    data: DistrictCreate, session: SessionDep, scope: ScopeDep
) -> DistrictOut:
    """Create a district under a parent the caller manages (a top-level region needs a
    regional_manager grant on its own id)."""
    return DistrictOut.model_validate(await districts.create(session, scope, data))


@router.get(
    "",
    responses=problem_responses(InvalidCursor, DistrictNotFound),
)
async def list_districts(
    session: SessionDep,
    scope: ScopeDep,
    page: PageDep,
    under: Annotated[
        str | None, Query(pattern=DISTRICT_ID_PATTERN, description="Only this subtree")
    ] = None,
) -> Page[DistrictOut]:
    """The districts the caller can see, in tree order (parents before children)."""
    return await districts.list_visible(session, scope, page, under)


@router.get("/{district_id}", responses=problem_responses(DistrictNotFound))
async def get_district(district_id: str, session: SessionDep, scope: ScopeDep) -> DistrictOut:
    """One district the caller can see."""
    return DistrictOut.model_validate(await districts.get_visible(session, scope, district_id))


@router.patch(
    "/{district_id}",
    responses=problem_responses(DistrictNotFound, Forbidden),
)
async def rename_district(
    district_id: str, data: DistrictRename, session: SessionDep, scope: ScopeDep
) -> DistrictOut:
    """Rename a district (its id, used in grants, never changes)."""
    return DistrictOut.model_validate(await districts.rename(session, scope, district_id, data))


@router.post(
    "/{district_id}/move",
    responses=problem_responses(DistrictNotFound, Forbidden, InvalidTree),
)
async def move_district(
    district_id: str, data: DistrictMove, session: SessionDep, scope: ScopeDep
) -> DistrictOut:
    """Move a district and everything under it to a new parent."""
    return DistrictOut.model_validate(await districts.move(session, scope, district_id, data))
