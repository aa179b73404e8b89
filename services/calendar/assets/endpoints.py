"""HTTP endpoints of assets."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["assets"])
