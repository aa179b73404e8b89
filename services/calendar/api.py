"""HTTP endpoints of the calendar service. Every route here requires the principal."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from chassis.principal import PrincipalDep

router = APIRouter(tags=["calendar"])


class Caller(BaseModel):
    service: str
    user: str
    districts: dict[str, list[str]]


@router.get("/me", response_model=Caller, summary="Who is calling")
async def who_am_i(principal: PrincipalDep) -> Caller:
    """The caller as the calendar service sees them: user id and roles per district."""
    return Caller(
        service="calendar",
        user=principal.sub,
        districts={d: sorted(roles) for d, roles in principal.grants.items()},
    )
