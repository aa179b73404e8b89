"""The calendar's vocabularies, each written once: the schemas validate and document them, the
tables' check constraints are built from them, and the rules (the post status machine, the
lint engine) are keyed by them. The stored strings are the members' values; changing one needs
a migration of the check constraint and of the rows."""

from __future__ import annotations

from enum import StrEnum


class PostStatus(StrEnum):
    """Where a post is in its life (the machine is ``posts.service.TRANSITIONS``)."""

    DRAFT = "draft"
    IN_REVIEW = "in_review"
    CHANGES_REQUESTED = "changes_requested"
    APPROVED = "approved"
    SCHEDULED = "scheduled"
    PUBLISHED = "published"
    PUBLISH_FAILED = "publish_failed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


class PublicationStatus(StrEnum):
    """How the publication of a post on one of its accounts went, as the scheduler reports."""

    PENDING = "pending"
    PUBLISHED = "published"
    FAILED = "failed"


class RuleKind(StrEnum):
    """What a style rule checks."""

    BANNED_TERM = "banned_term"
    REQUIRED_DISCLOSURE = "required_disclosure"
    HASHTAG_LIMIT = "hashtag_limit"
    LENGTH_LIMIT = "length_limit"
    LINK_DOMAINS = "link_domains"
    ALT_TEXT_REQUIRED = "alt_text_required"
    MIN_SPACING = "min_spacing"


class Severity(StrEnum):
    """An error refuses the submission; a warning comes back with the post."""

    ERROR = "error"
    WARNING = "warning"


class ApprovalStatus(StrEnum):
    """Where the approval request of a post's submission is, as approvals' events tell it:
    open while its steps are decided, then the status the event that closed it names."""

    OPEN = "open"
    GRANTED = "granted"
    REJECTED = "rejected"
    CHANGES_REQUESTED = "changes_requested"
    EXPIRED = "expired"
    SUPERSEDED = "superseded"
    WITHDRAWN = "withdrawn"
