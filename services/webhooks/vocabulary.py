"""The webhooks service's vocabularies, each written once: schemas validate with them, the
tables' check constraints list them (``models``), and the rules compare against them."""

from __future__ import annotations

from enum import StrEnum


class MessageStatus(StrEnum):
    """A message (one event for one endpoint) waits for its next attempt until one succeeds or
    the retries run out."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class AttemptOutcome(StrEnum):
    """How one attempt went: a 2xx, any other answer (a redirect included: never followed),
    or no answer at all (refused by the address guard, a timeout, a connection error)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ERROR = "error"


class DisabledReason(StrEnum):
    """Why an endpoint stopped receiving: its manager turned it off, the receiver answered
    410 Gone, or it kept failing for the whole failure window."""

    MANUAL = "manual"
    GONE = "gone"
    FAILING = "failing"


class AuditAction(StrEnum):
    """What happened to an endpoint, in its audit trail."""

    CREATED = "created"
    UPDATED = "updated"
    SECRET_ROTATED = "secret_rotated"
    DISABLED = "disabled"
    ENABLED = "enabled"
    DELETED = "deleted"
    REPLAYED = "replayed"
