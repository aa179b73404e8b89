"""HTTP endpoints of the webhooks service. Every route here requires the principal."""

from __future__ import annotations

from fastapi import APIRouter

from services.webhooks.deliveries.endpoints import router as deliveries_router
from services.webhooks.subscriptions.endpoints import router as subscriptions_router

router = APIRouter()
router.include_router(subscriptions_router)
router.include_router(deliveries_router)
