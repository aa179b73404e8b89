"""The approvals service's vocabularies, each written once: schemas validate with them, the
tables' check constraints list them (``models``), and the rules compare against them. The
values are what the database stores and the API and events carry; changing one is a
migration and a breaking change of the API."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

# How many of a step's eligible approvers decide it: one, all of them, or a count.
QuorumMode = Literal["any", "all", "count"]


class SubjectKind(StrEnum):
    """What is approved: a calendar post, or an inventory account request."""

    POST = "post"
    ACCOUNT_REQUEST = "account_request"


class RequestStatus(StrEnum):
    """An approval request is open until a decision, time or a newer submission closes it."""

    OPEN = "open"
    GRANTED = "granted"
    REJECTED = "rejected"
    CHANGES_REQUESTED = "changes_requested"
    SUPERSEDED = "superseded"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"


class StepStatus(StrEnum):
    """A planned step waits for the ones before it, is decided while active, and ends with
    its decision, or closed when its request closes first."""

    WAITING = "waiting"
    ACTIVE = "active"
    APPROVED = "approved"
    REJECTED = "rejected"
    CHANGES_REQUESTED = "changes_requested"
    CLOSED = "closed"


class Outcome(StrEnum):
    """What a decider (or an outside reviewer) says."""

    APPROVE = "approve"
    REJECT = "reject"
    REQUEST_CHANGES = "request_changes"


class Via(StrEnum):
    """How a decider came to be eligible: their own role, standing in for a delegator, the
    escalation target's role, or an outside reviewer's link."""

    GRANT = "grant"
    DELEGATION = "delegation"
    ESCALATION = "escalation"
    EXTERNAL = "external"


class OutsideReviewMode(StrEnum):
    """Whether a step takes outside reviewers, and whether their answers are decisions that
    count towards its quorum ("counted") or advice shown to its approvers ("advisory")."""

    NONE = "none"
    ADVISORY = "advisory"
    COUNTED = "counted"
