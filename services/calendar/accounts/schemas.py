"""What the accounts endpoints answer."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict


class AccountOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    platform: str
    handle: str
    display_name: str | None
    profile_url: str | None
    district_id: str
    status: str
