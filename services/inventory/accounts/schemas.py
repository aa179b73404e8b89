from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from chassis.principal import DISTRICT_ID_PATTERN
from chassis.query import CommaSeparated
from services.inventory.vocabulary import AccountStatus, OwnerRole

Tag = Field(min_length=1, max_length=50, pattern=r"^[^\s,][^,]*$")
LANGUAGE_PATTERN = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"  # BCP 47, e.g. fr, pt-BR
COUNTRY_PATTERN = r"^[A-Z]{2}$"  # ISO 3166-1 alpha-2
# An account's details as every input takes them (the API, requests, the CSV import).
DisplayName = Annotated[str | None, Field(max_length=300)]
Purpose = Annotated[str | None, Field(max_length=2000)]
Language = Annotated[str | None, Field(pattern=LANGUAGE_PATTERN)]
Country = Annotated[str | None, Field(pattern=COUNTRY_PATTERN)]
Notes = Annotated[str | None, Field(max_length=10_000)]


class Owner(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True)

    person: str = Field(min_length=1, max_length=200, description="User id of the person")
    role: OwnerRole
    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    active: bool = Field(default=True, description="False once the person has left")


class AccountDetails(BaseModel):
    """The details an account is registered and updated with alike (each may be left out)."""

    model_config = ConfigDict(extra="forbid")

    display_name: DisplayName = None
    purpose: Purpose = None
    language: Language = None
    country: Country = None


class AccountFields(AccountDetails):
    """What a caller may set on an account (all optional in an update)."""

    tags: list[str] = Field(default_factory=list, max_length=50)
    notes: Notes = None
    owners: list[Owner] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _clean(self) -> AccountFields:
        self.tags = _clean_tags(self.tags)
        _check_owners(self.owners)
        return self


class AccountCreate(AccountFields):
    platform: str | None = Field(default=None, max_length=50)
    handle: str | None = Field(default=None, max_length=300)
    profile_url: str | None = Field(
        default=None, max_length=2048, description="Instead of platform and handle"
    )
    district_id: str = Field(pattern=DISTRICT_ID_PATTERN)
    status: AccountStatus = AccountStatus.PENDING
    duplicate_of: uuid.UUID | None = None

    @model_validator(mode="after")
    def _identified(self) -> AccountCreate:
        if self.profile_url is None and (self.platform is None or self.handle is None):
            raise ValueError("give platform and handle, or a profile_url")
        if self.status == AccountStatus.ARCHIVED:
            raise ValueError("an account is not registered as archived")
        return self


class AccountUpdate(AccountDetails):
    tags: list[str] | None = Field(default=None, max_length=50)
    notes: Notes = None
    owners: list[Owner] | None = Field(default=None, max_length=20)
    district_id: str | None = Field(
        default=None, pattern=DISTRICT_ID_PATTERN, description="Move it to another district"
    )

    @model_validator(mode="after")
    def _clean(self) -> AccountUpdate:
        # An account always lies in a district: null is not a move (leave the field out to
        # keep the district).
        if "district_id" in self.model_fields_set and self.district_id is None:
            raise ValueError("district_id cannot be null; leave it out to keep the district")
        if self.tags is not None:
            self.tags = _clean_tags(self.tags)
        if self.owners is not None:
            _check_owners(self.owners)
        return self


def _clean_tags(tags: list[str]) -> list[str]:
    """The tags sorted, each once; a tag is 1 to 50 characters, without a comma or spaces at
    its edges (a rule of creation and update alike)."""
    for tag in tags:
        if not 1 <= len(tag) <= 50 or "," in tag or tag != tag.strip():
            raise ValueError(f"tag {tag!r}: 1 to 50 characters, no comma, no edge spaces")
    return sorted(set(tags))


def _check_owners(owners: list[Owner]) -> None:
    if len({o.person for o in owners}) != len(owners):
        raise ValueError("a person appears twice among the owners")


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: AccountStatus
    duplicate_of: uuid.UUID | None = Field(
        default=None, description="The original, when the status is duplicate"
    )
    reason: str | None = Field(default=None, max_length=2000)


class Flag(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    reason: str
    score: float | None
    details: dict[str, object]
    created_at: datetime


class AccountOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    platform: str
    handle: str
    profile_url: str
    display_name: str | None
    district_id: str
    status: AccountStatus
    duplicate_of: uuid.UUID | None
    purpose: str | None
    language: str | None
    country: str | None
    tags: list[str]
    notes: str | None
    owners: list[Owner] = Field(default_factory=list)
    flags: list[Flag] = Field(default_factory=list)
    last_activity_at: datetime | None
    version: int
    created_by: str
    created_at: datetime
    updated_at: datetime


class AccountFilters(BaseModel):
    """Which accounts a search reads: the query parameters of `GET /accounts`, which the
    export takes too (a field with an alias is named by its alias). The district filter is
    `district_id`, as in calendar and approvals."""

    district_id: str | None = Field(
        default=None,
        pattern=DISTRICT_ID_PATTERN,
        description="This district and everything below it",
    )
    platform: str | None = Field(default=None, max_length=50)
    statuses: CommaSeparated[AccountStatus] | None = Field(
        default=None, alias="status", description="Accounts in any of these statuses"
    )
    owner: str | None = Field(default=None, max_length=200)
    flagged: bool | None = None
    tag: str | None = Field(default=None, max_length=50)
    text: str | None = Field(
        default=None,
        alias="q",
        min_length=2,
        max_length=100,
        description="Handle or display name",
    )

    @field_validator("platform")
    @classmethod
    def _platform_key(cls, platform: str | None) -> str | None:
        # Platform keys are lower case: the filter matches whatever case it is given in.
        return platform.lower() if platform else None


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    action: str
    actor: str
    at: datetime
    request_id: str | None
    changes: dict[str, object]


class SummaryRow(BaseModel):
    district_id: str
    platform: str
    status: AccountStatus
    count: int


class PresenceSummary(BaseModel):
    total: int
    by_status: dict[str, int]
    by_platform: dict[str, int]
    by_district: dict[str, int]
    rows: list[SummaryRow]
