"""The approvals service's FastAPI app: its parts (`chassis.app.ServiceParts`) and settings."""

from __future__ import annotations

from fastapi import FastAPI

from chassis.app import ServiceParts, create_service_app
from services.approvals.settings import ApprovalsSettings


def create_app(settings: ApprovalsSettings | None = None) -> FastAPI:
    # Without settings, they come from the environment (the internal key too).
    return create_service_app(
        settings or ApprovalsSettings(), ServiceParts.of("services.approvals")
    )
