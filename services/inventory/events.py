"""Events the inventory service publishes on `chorus.inventory.events`, one model each.

An event's type is `chorus.inventory.<published_as>`; its subject (and Kafka key) is the id of
what changed: the district's slug, the account's id (its flags' events too), the account
request's id (`account.requested`, `account.request_closed`), the takedown case's id.
`catalog` lists every model; `/asyncapi.json` documents them. Other services declare the
fields they read themselves: they never import these models.

Each change is audited and published in one transaction (`audit.record_and_publish`; the CSV
import writes both in bulk).
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from chassis.events import EventCatalog, EventData
from services.inventory.vocabulary import (
    AccountStatus,
    DistrictKind,
    FlagReason,
    OwnerRole,
    RequestStatus,
    TakedownStatus,
)

# --- districts ------------------------------------------------------------------------------


class DistrictSnapshot(EventData):
    """A district as each of its events carries it: what it is after the change. The id is a
    slug that never changes; `path` is the ltree path of ids from the root region down to it
    (`hq.fr.fr-paris`), and it changes when the district or one above it moves."""

    id: str
    name: str
    kind: DistrictKind
    parent_id: str | None
    path: str


class DistrictCreated(DistrictSnapshot):
    """A district was created in the tree, under its parent (a top-level region has none)."""

    published_as = "district.created"


class DistrictRenamed(DistrictSnapshot):
    """A district was renamed; its id, kind and place in the tree stay."""

    published_as = "district.renamed"

    previous_name: str


class DistrictMoved(DistrictSnapshot):
    """A district moved under another parent, with everything below it.

    Only the moved district has an event: the paths of its descendants change with it
    (`previous_path` is the prefix they leave, `path` the one they take)."""

    published_as = "district.moved"

    previous_parent_id: str | None
    previous_path: str


# --- accounts -------------------------------------------------------------------------------


class AccountOwner(BaseModel):
    """A person responsible for an account."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    person: str = Field(description="User id of the person")
    role: OwnerRole
    name: str | None
    email: str | None
    active: bool = Field(description="False once the person has left")


class AccountSnapshot(EventData):
    """An account as its events carry it: everything but its internal notes, after the change.
    `version` grows by one with each change, so a consumer can drop a stale snapshot."""

    id: uuid.UUID
    platform: str
    handle: str
    profile_url: str
    display_name: str | None
    district_id: str
    status: AccountStatus
    duplicate_of: uuid.UUID | None = Field(description="The original, when status is duplicate")
    purpose: str | None
    language: str | None
    country: str | None
    tags: list[str]
    owners: list[AccountOwner]
    version: int


class AccountRegistered(AccountSnapshot):
    """An account entered the inventory: by hand, by a CSV import, as a found page, or because
    approvals granted an account request (then `request_id` names the request)."""

    published_as = "account.registered"

    request_id: uuid.UUID | None = None


class AccountUpdated(AccountSnapshot):
    """An account's details, owners or district changed (by hand or by a CSV import).

    `changed` names what changed, among the snapshot's fields and `notes` (notes themselves
    are not published). A status change is `account.status_changed` instead."""

    published_as = "account.updated"

    changed: list[str]


class AccountStatusChanged(EventData):
    """An account's status changed, along the allowed transitions only.

    By hand, by a CSV import, or as the effect of an approved account request, a found-page
    report or a takedown's outcome; `reason` says why when one was given. `version` is the
    account's after the change."""

    published_as = "account.status_changed"

    id: uuid.UUID
    platform: str
    handle: str
    district_id: str
    status: AccountStatus
    previous_status: AccountStatus
    duplicate_of: uuid.UUID | None = Field(description="The original, when status is duplicate")
    reason: str | None
    version: int


class NearDuplicateDetails(BaseModel):
    """Why an account looks like another one on the same platform (pg_trgm similarities,
    0 to 1, rounded to three decimals)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    other_account_id: uuid.UUID
    other_handle: str
    handle_similarity: float
    name_similarity: float


class DormantDetails(BaseModel):
    """Why an official account is dormant: no activity since `inactive_since` (its last
    published post, or its registration), longer than its platform allows."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    last_activity_at: AwareDatetime | None
    inactive_since: AwareDatetime
    dormant_after_days: int


class OrphanedDetails(BaseModel):
    """Why an account is orphaned: none of its owners is active (those it has are listed)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: Literal[AccountStatus.OFFICIAL, AccountStatus.DORMANT]
    inactive_owners: list[str]


class AccountFlagChange(EventData):
    """A detection flag on an account, as the scan that raised it described it. `flag_id`
    identifies the flag from its raising to its resolution; `details` depends on `reason`."""

    flag_id: int
    account_id: uuid.UUID
    district_id: str
    platform: str
    handle: str
    reason: FlagReason
    score: float | None = Field(description="The similarity, for near duplicates")
    details: NearDuplicateDetails | DormantDetails | OrphanedDetails


class AccountFlagged(AccountFlagChange):
    """Detection found something about an account: a near duplicate, dormant or orphaned.

    Published once per flag: scans that find the same again publish nothing until the flag is
    resolved. A near-duplicate pair flags both accounts, each naming the other."""

    published_as = "account.flagged"


class AccountFlagResolved(AccountFlagChange):
    """A flag no longer holds, and is resolved.

    A later scan no longer finds what it found (or, for a dormant flag, a post was published
    on the account). The data is the flag as it was raised."""

    published_as = "account.flag_resolved"


# --- account requests -----------------------------------------------------------------------


class RequestedAccount(BaseModel):
    """The account a request asks for, as it will be registered when granted."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    district_id: str
    platform: str
    handle: str
    profile_url: str
    display_name: str | None
    purpose: str
    language: str | None
    country: str | None
    requested_by: str


class AccountRequestChange(EventData):
    """An account request, for the approvals service: `subject_kind` and `request_id` are the
    subject it decides on (the event's subject is the request's id too)."""

    request_id: uuid.UUID
    subject_kind: Literal["account_request"] = "account_request"
    district_id: str
    platform: str
    handle: str
    requested_by: str


class AccountRequested(AccountRequestChange):
    """A district asked for a new official account; it waits for a decision of approvals.

    `snapshot` is what the approvers approve, and `content_hash` the sha256 (hex) of its
    canonical JSON: keys sorted, no spaces, UTF-8. A grant registers exactly that account."""

    published_as = "account.requested"

    profile_url: str
    display_name: str | None
    purpose: str
    language: str | None
    country: str | None
    snapshot: RequestedAccount
    content_hash: str = Field(pattern=r"^[0-9a-f]{64}$")


class AccountRequestClosed(AccountRequestChange):
    """An account request ended: approved (`account_id` is the official account), rejected,
    or cancelled by its requester or a manager. Nothing happens to it afterwards."""

    published_as = "account.request_closed"

    status: Literal[RequestStatus.APPROVED, RequestStatus.REJECTED, RequestStatus.CANCELLED]
    account_id: uuid.UUID | None
    decision_comment: str | None
    decided_by: str | None = Field(description="Who decided in approvals; none when cancelled")


# --- takedowns ------------------------------------------------------------------------------


class TakedownCaseChange(EventData):
    """A takedown case on a found page (a rogue, fan, unofficial or duplicate account), after
    the change, with the account as it stands then."""

    id: uuid.UUID
    account_id: uuid.UUID
    district_id: str = Field(description="The account's district when the case was opened")
    status: TakedownStatus
    previous_status: TakedownStatus | None
    platform_reference: str | None = Field(description="The platform's ticket or report id")
    platform: str
    handle: str
    profile_url: str
    account_status: AccountStatus


class TakedownOpened(TakedownCaseChange):
    """A takedown case was opened on a found page; an account has one case under way at most."""

    published_as = "takedown.opened"

    status: Literal[TakedownStatus.OPEN]
    previous_status: None = None


class TakedownUpdated(TakedownCaseChange):
    """A takedown case moved on: reported to the platform, escalated, or closed as removed (the
    account is archived), kept, or transferred (the account becomes official)."""

    published_as = "takedown.updated"

    previous_status: TakedownStatus


catalog = EventCatalog(
    "inventory",
    [
        DistrictCreated,
        DistrictRenamed,
        DistrictMoved,
        AccountRegistered,
        AccountUpdated,
        AccountStatusChanged,
        AccountFlagged,
        AccountFlagResolved,
        AccountRequested,
        AccountRequestClosed,
        TakedownOpened,
        TakedownUpdated,
    ],
)
