from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from chassis.principal import DISTRICT_ID_PATTERN
from services.inventory.accounts.schemas import AccountOut
from services.inventory.vocabulary import AccountStatus, TakedownStatus

# Where a case can go; "open" is only where it starts.
TargetStatus = Literal[
    TakedownStatus.REPORTED,
    TakedownStatus.ESCALATED,
    TakedownStatus.REMOVED,
    TakedownStatus.KEPT,
    TakedownStatus.TRANSFERRED,
]
# What a found page is reported as.
Classification = Literal[AccountStatus.ROGUE, AccountStatus.FAN, AccountStatus.UNOFFICIAL]

MAX_EVIDENCE = 20
NOTE_MAX_LENGTH = 5000
# A link to a screenshot, an archived copy, a post on the page...
EVIDENCE_URL_PATTERN = r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s]+$"
# A ticket number or a case URL at the platform: printable, on one line.
REFERENCE_PATTERN = r"^[^\x00-\x1f\x7f]+$"


class Evidence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(
        default=None, max_length=2048, pattern=EVIDENCE_URL_PATTERN, description="http(s) link"
    )
    note: str = Field(min_length=1, max_length=2000, description="What it shows")
    captured_at: AwareDatetime | None = Field(default=None, description="When it was captured")


class FoundPageReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    profile_url: str = Field(max_length=2048, description="The page's profile URL")
    district_id: str = Field(
        pattern=DISTRICT_ID_PATTERN,
        description="The district responsible for it (where a new account is registered)",
    )
    classification: Classification
    display_name: str | None = Field(default=None, max_length=300)
    evidence: list[Evidence] = Field(min_length=1, max_length=MAX_EVIDENCE)
    notes: str | None = Field(
        default=None,
        max_length=NOTE_MAX_LENGTH,
        description="The new account's notes and the first entry of the case's timeline",
    )
    open_case: bool = Field(default=True, description="Open a takedown case for it")


class TakedownOpen(BaseModel):
    model_config = ConfigDict(extra="forbid")

    evidence: list[Evidence] = Field(default_factory=list, max_length=MAX_EVIDENCE)
    note: str | None = Field(
        default=None, min_length=1, max_length=NOTE_MAX_LENGTH, description="First timeline entry"
    )


class TakedownTransition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: TargetStatus
    platform_reference: str | None = Field(
        default=None,
        min_length=1,
        max_length=500,
        pattern=REFERENCE_PATTERN,
        description="The platform's ticket or report reference; required to move to reported",
    )
    note: str = Field(min_length=1, max_length=NOTE_MAX_LENGTH)


class NoteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=NOTE_MAX_LENGTH)


class TimelineEntry(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    author: str
    status: TakedownStatus | None = Field(description="The status it moved to; null for a note")
    text: str
    created_at: datetime


class PageBrief(BaseModel):
    """The found page a case is about."""

    id: uuid.UUID
    platform: str
    handle: str
    profile_url: str
    display_name: str | None
    status: AccountStatus


class TakedownOut(BaseModel):
    id: uuid.UUID
    account_id: uuid.UUID
    account: PageBrief
    district_id: str
    status: TakedownStatus
    closed: bool = Field(description="removed, kept and transferred are final")
    allowed_transitions: list[TargetStatus]
    platform_reference: str | None
    evidence: list[Evidence]
    opened_by: str
    created_at: datetime
    updated_at: datetime


class TakedownDetail(TakedownOut):
    timeline: list[TimelineEntry] = Field(description="Oldest first")


class FoundPageOut(BaseModel):
    account: AccountOut
    registered: bool = Field(description="False when the page was already in the inventory")
    case: TakedownDetail | None
