"""HTTP endpoints of the webhooks service. Every route here requires the principal."""

from __future__ import annotations

from fastapi import APIRouter

from services.webhooks.subscriptions.endpoints import router as subscriptions_router

router = APIRouter()
router.include_router(subscriptions_router)
