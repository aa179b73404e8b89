"""Import and export models: one CSV row as validated at the edge, and what an import answers."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from chassis.principal import DISTRICT_ID_PATTERN
from services.inventory.accounts.schemas import (
    Country,
    DisplayName,
    Language,
    Notes,
    Purpose,
    Tag,
)
from services.inventory.vocabulary import AccountStatus

MAX_OWNERS = 20  # as AccountFields.owners
Person = Annotated[str, Field(min_length=1, max_length=200)]


class ImportRow(BaseModel):
    """The cells of one CSV row, cleaned (empty cells are None, lists split): the same limits as
    an account created through the API. Rules that need the database (platform, district,
    status transitions) are checked by the service."""

    model_config = ConfigDict(extra="forbid")

    platform: str | None = Field(default=None, max_length=50)
    handle: str | None = Field(default=None, max_length=300)
    profile_url: str | None = Field(default=None, max_length=2048)
    display_name: DisplayName = None
    district_id: str | None = Field(default=None, pattern=DISTRICT_ID_PATTERN)
    status: AccountStatus | None = None
    owner_primary: list[Person] = Field(default_factory=list, max_length=MAX_OWNERS)
    owner_backup: list[Person] = Field(default_factory=list, max_length=MAX_OWNERS)
    purpose: Purpose = None
    language: Language = None
    country: Country = None
    tags: list[Annotated[str, Tag]] = Field(default_factory=list, max_length=50)
    notes: Notes = None


class RowError(BaseModel):
    line: int = Field(description="Line of the file where the row starts (the header is line 1)")
    column: str | None = Field(default=None, description="The column at fault, when one is")
    message: str


class ImportResult(BaseModel):
    dry_run: bool = Field(description="True when nothing was written")
    rows: int = Field(description="Data rows in the file")
    created: int
    updated: int
    unchanged: int


class ImportProgress(BaseModel):
    """One line of the `application/x-ndjson` answer while the import runs."""

    phase: Literal["validating", "writing"]
    done: int
    total: int
