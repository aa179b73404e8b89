"""HTTP endpoints of blackouts: periods when nothing publishes, company-wide or for a district
and those below it. Reading needs any role on a district the blackout applies to; declaring
and lifting one needs a manager there (the central team for company-wide ones)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from chassis.database import SessionDep
from chassis.districts import DistrictNotFound, ScopeDep
from chassis.errors import Forbidden, problem_responses
from chassis.instants import Instant
from chassis.pagination import InvalidCursor, Page, PageDep
from services.calendar.blackouts.schemas import BlackoutCreate, BlackoutCreated, BlackoutOut
from services.calendar.blackouts.service import BlackoutNotFound, InvalidWindow, blackouts
from services.calendar.schemas import district_query

router = APIRouter(tags=["blackouts"])


@router.post(
    "/blackouts",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(DistrictNotFound, Forbidden),
)
async def create_blackout(
    data: BlackoutCreate, session: SessionDep, scope: ScopeDep
) -> BlackoutCreated:
    """Declare a blackout: from `starts_at` (inclusive) to `ends_at` (exclusive), both with
    their UTC offset, at most a year long. Posts of the district and the districts below it
    (every district when `district_id` is null) cannot be scheduled inside it, and lint
    reports the clash as an error. Posts already scheduled inside it are put on hold: they
    go back to `approved` with the blackout as their `status_reason`, and `post.unscheduled`
    tells the scheduler, their authors and managers (`posts_put_on_hold` counts them).
    Needs a manager role on the district; a company-wide blackout needs the central team."""
    return await blackouts.create(session, scope, data)


@router.get(
    "/blackouts",
    responses=problem_responses(InvalidCursor, DistrictNotFound, InvalidWindow),
)
async def list_blackouts(
    session: SessionDep,
    scope: ScopeDep,
    page: PageDep,
    district_id: Annotated[
        str | None,
        district_query(
            "The blackouts binding this district: company-wide, its ancestors'"
            " and its own; company-wide ones only when left out",
        ),
    ] = None,
    from_: Annotated[
        Instant | None,
        Query(alias="from", description="Only blackouts still running at or after this"),
    ] = None,
    to: Annotated[Instant | None, Query(description="Only blackouts starting before this")] = None,
) -> Page[BlackoutOut]:
    """The blackouts that apply to a district and overlap the window [`from`, `to`),
    earliest first."""
    return await blackouts.list_applying(
        session, scope, page, district_id=district_id, start=from_, end=to
    )


@router.get(
    "/blackouts/{blackout_id}",
    responses=problem_responses(BlackoutNotFound),
)
async def get_blackout(blackout_id: uuid.UUID, session: SessionDep, scope: ScopeDep) -> BlackoutOut:
    """One blackout; 404 unless it applies to a district the caller reads."""
    return BlackoutOut.model_validate(await blackouts.get(session, scope, blackout_id))


@router.delete(
    "/blackouts/{blackout_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(BlackoutNotFound, Forbidden),
)
async def delete_blackout(blackout_id: uuid.UUID, session: SessionDep, scope: ScopeDep) -> None:
    """Lift a blackout. Needs a manager role on its district (the central team for a
    company-wide one). Posts it refused or put on hold stay where they are until someone
    retries scheduling them (`POST /posts/{id}/status`) or moves them."""
    await blackouts.delete(session, scope, blackout_id)
