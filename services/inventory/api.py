"""HTTP endpoints of the inventory service. Every route here requires the principal."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from chassis.database import SessionDep
from chassis.principal import PrincipalDep
from services.inventory.accounts.endpoints import router as accounts_router
from services.inventory.availability.endpoints import router as availability_router
from services.inventory.detection.endpoints import router as detection_router
from services.inventory.districts.endpoints import router as districts_router
from services.inventory.platforms import load_registry
from services.inventory.requests.endpoints import router as requests_router
from services.inventory.takedowns.endpoints import router as takedowns_router
from services.inventory.transfer.endpoints import router as transfer_router

router = APIRouter()
# Fixed paths (import, export, detection) before /accounts/{account_id}.
router.include_router(transfer_router)
router.include_router(detection_router)
router.include_router(districts_router)
router.include_router(accounts_router)
router.include_router(requests_router)
router.include_router(takedowns_router)
router.include_router(availability_router)


class PlatformOut(BaseModel):
    key: str
    name: str
    handle_pattern: str
    profile_url_template: str
    dormant_after_days: int


@router.get("/platforms", tags=["platforms"])
async def list_platforms(session: SessionDep, principal: PrincipalDep) -> list[PlatformOut]:
    """The platforms Chorus knows, with their handle rules."""
    registry = await load_registry(session)
    return [
        PlatformOut(
            key=r.key,
            name=r.name,
            handle_pattern=r.handle_re.pattern,
            profile_url_template=r.profile_url_template,
            dormant_after_days=r.dormant_after_days,
        )
        for r in sorted(registry.platforms.values(), key=lambda r: r.key)
    ]
