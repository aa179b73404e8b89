"""HTTP endpoints of the approvals service. Every route of `router` requires the principal;
`public_router` (served under /public) holds the outside reviewers' pages, authenticated by
their single-use token."""

from __future__ import annotations

from fastapi import APIRouter

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
