from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from chassis.principal import DISTRICT_ID_PATTERN
from services.inventory.accounts.schemas import Country, DisplayName, Language
from services.inventory.vocabulary import RequestStatus


class AccountRequestCreate(BaseModel):
    """What a district asks for: an account by platform and handle, or by its profile URL."""

    model_config = ConfigDict(extra="forbid")

    district_id: str = Field(pattern=DISTRICT_ID_PATTERN)
    platform: str | None = Field(default=None, max_length=50)
    handle: str | None = Field(default=None, max_length=300)
    profile_url: str | None = Field(
        default=None, max_length=2048, description="Instead of platform and handle"
    )
    display_name: DisplayName = None
    purpose: str = Field(
        min_length=1, max_length=2000, description="Why the district needs this account"
    )
    language: Language = None
    country: Country = None

    @model_validator(mode="after")
    def _identified(self) -> AccountRequestCreate:
        if self.profile_url is None and (self.platform is None or self.handle is None):
            raise ValueError("give platform and handle, or a profile_url")
        if not self.purpose.strip():
            raise ValueError("the purpose cannot be blank")
        return self


class AccountRequestOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    district_id: str
    platform: str
    handle: str
    display_name: str | None
    purpose: str
    language: str | None
    country: str | None
    requested_by: str
    status: RequestStatus
    decision_comment: str | None
    account_id: uuid.UUID | None = Field(description="The account, once approved")
    created_at: datetime
    decided_at: datetime | None
