"""HTTP endpoints of posts."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["posts"])
