from __future__ import annotations

from fastapi import APIRouter, Request

from chassis.database import SessionDep
from chassis.districts import DistrictNotFound, ScopeDep
from chassis.errors import Forbidden, problem_responses
from chassis.settings import ServiceSettings
from services.inventory.detection.schemas import DetectionReport, DetectionRun
from services.inventory.detection.service import DetectionRunning, run_on_demand

router = APIRouter(prefix="/detection", tags=["detection"])


@router.post(
    "/run",
    responses=problem_responses(DistrictNotFound, Forbidden, DetectionRunning),
)
async def run_detection(
    data: DetectionRun, request: Request, session: SessionDep, scope: ScopeDep
) -> DetectionReport:
    """Run detection now (near-duplicates, dormant, orphaned; all by default) over a district's
    subtree, or over every district the caller manages. Returns per check how many flags were
    raised (each published as `account.flagged`) and how many open flags were resolved. The
    same checks also run on a schedule over the whole organisation; while one of them is under
    way, the run answers 409."""
    settings: ServiceSettings = request.app.state.settings
    return DetectionReport(counts=await run_on_demand(session, scope, settings, data))
