"""Every vocabulary of the inventory service, once: the schemas validate with these, the
models' check constraints list them, the transition tables are keyed by them.

The values are what the database stores and the API shows; changing one is a migration and
an API change, adding one is a migration of the check constraint.

Each status word has one meaning across the vocabularies (the glossary in the service's
README says the same to API users):
- `open` is the first status of a request or a case: started, nothing decided or done yet.
  It is never an account status.
- `pending` is only an account status: in the inventory, not yet classified. It does not
  mean "waiting for approval"; a request waiting for approvals is `open`.
- A request or case in a final status is closed (`account.request_closed`); a case not yet
  closed (`open`, `reported`, `escalated`) is under way (409 `takedown-under-way`).
- A detection flag has no status: an open flag is one not yet resolved.
"""

from __future__ import annotations

from enum import StrEnum


class DistrictKind(StrEnum):
    """A district's level in the tree; a child is never above its parent."""

    REGION = "region"
    DISTRICT = "district"
    TEAM = "team"


class AccountStatus(StrEnum):
    """What an account is to the organisation. `pending`: in the inventory (registered by
    hand or by an import) but not yet classified by a manager; the first status of an account
    registered without one. It waits for a manager, not for approvals (an account request
    waiting for approvals is `open`; granting one makes a pending account of its handle
    official)."""

    PENDING = "pending"
    OFFICIAL = "official"
    UNOFFICIAL = "unofficial"
    ROGUE = "rogue"
    FAN = "fan"
    DUPLICATE = "duplicate"
    DORMANT = "dormant"
    ORPHANED = "orphaned"
    ARCHIVED = "archived"


class OwnerRole(StrEnum):
    PRIMARY = "primary"
    BACKUP = "backup"


class RequestStatus(StrEnum):
    """An account request: `open` (waiting for approvals' decision) until approvals decides
    (`approved`, `rejected`) or its requester withdraws it (`cancelled`); those three are
    final."""

    OPEN = "open"
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


class TakedownStatus(StrEnum):
    """A takedown case: `open` once opened in Chorus, nothing sent to the platform yet;
    `reported` to the platform; `escalated`; then one final outcome (`removed`, `kept`,
    `transferred`). Open, reported and escalated cases are under way."""

    OPEN = "open"
    REPORTED = "reported"
    ESCALATED = "escalated"
    REMOVED = "removed"
    KEPT = "kept"
    TRANSFERRED = "transferred"


class FlagReason(StrEnum):
    """What detection found on an account (one open flag per account and reason, and other
    account for near duplicates)."""

    NEAR_DUPLICATE = "near_duplicate"
    DORMANT = "dormant"
    ORPHANED = "orphaned"
