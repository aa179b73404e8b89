"""HTTP endpoints of the webhooks service. Every route here requires the principal."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["webhooks"])
