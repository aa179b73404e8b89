"""Every vocabulary of the inventory service, once: the schemas validate with these, the
models' check constraints list them, the transition tables are keyed by them.

The values are what the database stores and the API shows; changing one is a migration and
an API change, adding one is a migration of the check constraint.
"""

from __future__ import annotations

from enum import StrEnum


class DistrictKind(StrEnum):
    """A district's level in the tree; a child is never above its parent."""

    REGION = "region"
    DISTRICT = "district"
    TEAM = "team"


class AccountStatus(StrEnum):
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
    """An account request: open until approvals decides or its requester withdraws it."""

    OPEN = "open"
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


class TakedownStatus(StrEnum):
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
