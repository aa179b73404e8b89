"""HTTP endpoints of the approvals service. Every route of `router` requires the principal;
`public_router` (served under /public) holds the outside reviewers' pages, authenticated by
their single-use token."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from chassis.principal import PrincipalDep
from services.approvals.delegations.endpoints import router as delegations_router
from services.approvals.policies.endpoints import router as policies_router
from services.approvals.requests.endpoints import router as requests_router
from services.approvals.reviews.endpoints import public_router as reviews_public_router
from services.approvals.reviews.endpoints import router as reviews_router

router = APIRouter()
router.include_router(policies_router)
router.include_router(requests_router)
router.include_router(reviews_router)
router.include_router(delegations_router)

public_router = APIRouter()
public_router.include_router(reviews_public_router)


class Caller(BaseModel):
    service: str
    user: str
    districts: dict[str, list[str]]


@router.get("/me", response_model=Caller, summary="Who is calling", tags=["approvals"])
async def who_am_i(principal: PrincipalDep) -> Caller:
    """The caller as the approvals service sees them: user id and roles per district."""
    return Caller(
        service="approvals",
        user=principal.sub,
        districts={d: sorted(roles) for d, roles in principal.grants.items()},
    )
