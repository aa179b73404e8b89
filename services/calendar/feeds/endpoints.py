"""HTTP endpoints of feeds."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["feeds"])
# Served under /public (no principal): the feed token in the path is the credential.
public_router = APIRouter(tags=["feeds"])
