"""HTTP endpoints of the metrics service. Every route here requires the principal."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["metrics"])
