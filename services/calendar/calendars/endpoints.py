"""HTTP endpoints of calendars."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["calendars"])
