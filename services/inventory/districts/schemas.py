from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from chassis.principal import DISTRICT_ID_PATTERN
from services.inventory.vocabulary import DistrictKind

DistrictId = str


class DistrictCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(
        pattern=DISTRICT_ID_PATTERN,
        description="Stable slug, chosen once (tokens grant roles on it)",
        examples=["fr-marketing"],
    )
    name: str = Field(min_length=1, max_length=200)
    kind: DistrictKind
    parent_id: str | None = Field(default=None, pattern=DISTRICT_ID_PATTERN)


class DistrictRename(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)


class DistrictMove(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parent_id: str = Field(pattern=DISTRICT_ID_PATTERN)


class DistrictOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    kind: DistrictKind
    parent_id: str | None
    path: str = Field(description="Ids from the root down, dot-separated")
    created_at: datetime
    updated_at: datetime
