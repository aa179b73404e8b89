"""Request and response models of calendars and campaigns."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from chassis.principal import DISTRICT_ID_PATTERN

# Inventory's district ids (slugs); an id outside this shape cannot name a district.
DistrictId = Annotated[str, Field(pattern=DISTRICT_ID_PATTERN)]

MAX_GOALS = 20
MAX_TAGS = 20


def _clean_tag(value: str) -> str:
    value = value.strip()
    if not value or any(ord(c) < 32 or c == "," for c in value):
        raise ValueError("a tag is a non-empty word or phrase without commas or control characters")
    return value


Tag = Annotated[str, Field(max_length=50), AfterValidator(_clean_tag)]
Name = Annotated[str, Field(min_length=1, max_length=200)]


def _distinct_tags(tags: list[str]) -> list[str]:
    return list(dict.fromkeys(tags))


Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS), AfterValidator(_distinct_tags)]


class CalendarOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    district_id: str | None = Field(description="null: the company-wide calendar")
    name: str
    created_at: datetime


class CalendarUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name


class Goal(BaseModel):
    """A KPI target of the campaign, e.g. engagement_rate 0.04."""

    model_config = ConfigDict(extra="forbid")

    kpi: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")
    target: float = Field(allow_inf_nan=False)
    note: str | None = Field(default=None, max_length=500)


class CampaignFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    description: str | None = Field(default=None, max_length=5000)
    starts_on: date
    ends_on: date = Field(description="The last day of the campaign (inclusive)")
    goals: list[Goal] = Field(default_factory=list, max_length=MAX_GOALS)
    tags: Tags = Field(default_factory=list)

    @model_validator(mode="after")
    def _dates_ordered(self) -> CampaignFields:
        if self.ends_on < self.starts_on:
            raise ValueError("ends_on is before starts_on")
        return self


class CampaignCreate(CampaignFields):
    district_id: DistrictId | None = Field(
        default=None, description="null: a company-wide campaign (central team only)"
    )


class CampaignUpdate(BaseModel):
    """A partial edit; fields left out keep their value. The district cannot change: posts of
    other districts may already belong to the campaign."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    description: str | None = Field(default=None, max_length=5000)
    starts_on: date | None = None
    ends_on: date | None = None
    goals: list[Goal] | None = Field(default=None, max_length=MAX_GOALS)
    tags: Tags | None = None


class CampaignOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    district_id: str | None = Field(description="null: company-wide")
    name: str
    description: str | None
    starts_on: date
    ends_on: date
    goals: list[Goal]
    tags: list[str]
    created_by: str
    created_at: datetime
    updated_at: datetime
