"""The approvals service's FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from chassis.app import create_service_app
from services.approvals.api import public_router, router
from services.approvals.consumers import consumers
from services.approvals.jobs import periodic_jobs
from services.approvals.models import districts, messaging
from services.approvals.settings import ApprovalsSettings

SERVICE_DESCRIPTION = (
    "Approval policies inherited down the district tree, approval requests, decisions, "
    "delegation and the snapshot of what was approved."
)


def create_app(settings: ApprovalsSettings | None = None) -> FastAPI:
    return create_service_app(
        settings=settings or ApprovalsSettings(),  # internal_key comes from the environment
        title="Chorus approvals",
        description=SERVICE_DESCRIPTION,
        router=router,
        districts=districts,
        messaging=messaging,
        consumers=consumers,
        periodic_jobs=periodic_jobs,
        public_router=public_router,
    )
