"""HTTP endpoints of the inventory service. Every route here requires the principal."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from chassis.principal import PrincipalDep

router = APIRouter(tags=["inventory"])


class Caller(BaseModel):
    service: str
    user: str
    districts: dict[str, list[str]]


@router.get("/me", response_model=Caller, summary="Who is calling")
async def who_am_i(principal: PrincipalDep) -> Caller:
    """The caller as the inventory service sees them: user id and roles per district."""
    return Caller(
        service="inventory",
        user=principal.sub,
        districts={d: sorted(roles) for d, roles in principal.grants.items()},
    )
