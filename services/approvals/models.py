"""Tables of the approvals service (one metadata, for its own Alembic).

A policy (per district and subject kind; district NULL = company-wide) keeps every version of
its steps; a request keeps the versions it started with and a copy of its planned steps, so a
later policy change never alters a request in flight. Decisions and the request history are
append-only (a trigger refuses UPDATE and DELETE).

``districts`` is the replica of inventory's tree, kept by the chassis's district replica.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    UniqueConstraint,
)
from sqlalchemy import (
    text as sql_text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from chassis.app import Messaging
from chassis.database import COLUMN_TYPES, InsertedAt, SerialKey, UuidKey, new_metadata, one_of
from chassis.districts import district_replica_table
from services.approvals.events import catalog
from services.approvals.vocabulary import (
    Outcome,
    OutsideReviewMode,
    RequestStatus,
    StepStatus,
    SubjectKind,
    Via,
)


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = COLUMN_TYPES


districts = district_replica_table(Base.metadata)
messaging = Messaging.of(Base.metadata, catalog)


class Policy(Base):
    """A district's (or the company's) approval policy for one kind of subject."""

    __tablename__ = "policies"

    id: Mapped[UuidKey]
    district_id: Mapped[str | None]
    subject_kind: Mapped[str]
    current_version: Mapped[int]
    # A retired policy adds no steps any more; its versions stay for the requests using them.
    retired_at: Mapped[datetime | None]
    created_by: Mapped[str]
    created_at: Mapped[InsertedAt]

    __table_args__ = (
        CheckConstraint(one_of("subject_kind", SubjectKind), name="subject_kind"),
        UniqueConstraint(
            "district_id",
            "subject_kind",
            name="uq_policies_district_kind",
            postgresql_nulls_not_distinct=True,
        ),
    )


class PolicyVersion(Base):
    __tablename__ = "policy_versions"

    policy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("policies.id"), primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True)
    # [StepSpec as JSON]: the ordered steps this policy adds to its parent's.
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    description: Mapped[str | None]
    created_by: Mapped[str]
    created_at: Mapped[InsertedAt]


class ApprovalRequest(Base):
    __tablename__ = "requests"

    id: Mapped[UuidKey]
    subject_kind: Mapped[str]
    subject_id: Mapped[uuid.UUID]
    district_id: Mapped[str]
    title: Mapped[str | None]
    # Who wrote what is to be approved: they never approve it themselves.
    author: Mapped[str]
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSONB)
    content_hash: Mapped[str]
    # A request still open when the subject's publish time passes expires.
    expires_at: Mapped[datetime | None]
    # [{"policy_id", "district_id", "version"}] the plan was made from.
    policy_versions: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(server_default=RequestStatus.OPEN.value)
    current_position: Mapped[int | None]
    # The id of the event that opened it (a redelivered submission opens nothing new).
    source_event_id: Mapped[uuid.UUID | None] = mapped_column(unique=True)
    opened_at: Mapped[InsertedAt]
    closed_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(server_default="1")

    __table_args__ = (
        CheckConstraint(one_of("subject_kind", SubjectKind), name="subject_kind"),
        CheckConstraint(one_of("status", RequestStatus), name="status"),
        # One open request per subject: a newer submission supersedes the open one first.
        Index(
            "uq_requests_open_subject",
            "subject_kind",
            "subject_id",
            unique=True,
            postgresql_where=sql_text("status = 'open'"),
        ),
        Index("ix_requests_subject", "subject_kind", "subject_id", "opened_at"),
        Index("ix_requests_district", "district_id", "opened_at"),
        Index("ix_requests_expiry", "expires_at", postgresql_where=sql_text("status = 'open'")),
    )


class RequestStep(Base):
    """A planned step of a request: who decides, where, how many, by when."""

    __tablename__ = "request_steps"

    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str]
    name: Mapped[str]
    role: Mapped[str]
    # Only holders of the role itself decide, not of a role that includes it.
    exact_role: Mapped[bool] = mapped_column(server_default=sql_text("false"))
    # The district where eligibility is resolved (the role held there or above it).
    district_id: Mapped[str]
    quorum_mode: Mapped[str]
    quorum_count: Mapped[int]
    deadline_hours: Mapped[int | None]
    remind_before_hours: Mapped[int | None]
    escalate_to_role: Mapped[str | None]
    escalate_to_district_id: Mapped[str | None]
    # Copied from the policy step with the rest: a later policy change never lets outside
    # answers count on a request already open.
    outside_review: Mapped[str] = mapped_column(server_default=OutsideReviewMode.NONE.value)
    # Copies of the request's, so "my pending" filters and orders on this table alone.
    request_author: Mapped[str]
    request_opened_at: Mapped[datetime]
    # Why the step is in the plan (the policy, and the condition that matched).
    reasons: Mapped[list[str]] = mapped_column(JSONB, server_default=sql_text("'[]'::jsonb"))
    status: Mapped[str] = mapped_column(server_default=StepStatus.WAITING.value)
    approvals: Mapped[int] = mapped_column(server_default="0")
    activated_at: Mapped[datetime | None]
    due_at: Mapped[datetime | None]
    reminded_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint(one_of("status", StepStatus), name="status"),
        CheckConstraint("quorum_count >= 1", name="quorum_count"),
        CheckConstraint(one_of("outside_review", OutsideReviewMode), name="outside_review"),
        # "My pending approvals": the active steps by role.
        Index(
            "ix_request_steps_active",
            "role",
            "district_id",
            "request_id",
            postgresql_where=sql_text("status = 'active'"),
        ),
        Index(
            "ix_request_steps_escalated",
            "escalate_to_role",
            "escalate_to_district_id",
            "request_id",
            postgresql_where=sql_text("status = 'active' AND escalated_at IS NOT NULL"),
        ),
        Index("ix_request_steps_due", "due_at", postgresql_where=sql_text("status = 'active'")),
    )


def _of_request_step() -> ForeignKeyConstraint:
    """A row about one step of a request (``request_id``, ``position``): it goes with the step.
    A new constraint per table, as SQLAlchemy attaches each to one table."""
    return ForeignKeyConstraint(
        ["request_id", "position"],
        ["request_steps.request_id", "request_steps.position"],
        ondelete="CASCADE",
    )


class Decision(Base):
    """One decider's decision on one step. Append-only."""

    __tablename__ = "decisions"

    id: Mapped[SerialKey]
    request_id: Mapped[uuid.UUID]
    position: Mapped[int]
    decider: Mapped[str]
    # The person the decider stood in for (a delegation), if any.
    acting_for: Mapped[str | None]
    via: Mapped[str]
    outcome: Mapped[str]
    comment: Mapped[str | None]
    idempotency_key: Mapped[str | None]
    decided_at: Mapped[InsertedAt]

    __table_args__ = (
        _of_request_step(),
        CheckConstraint(one_of("outcome", Outcome), name="outcome"),
        CheckConstraint(one_of("via", Via), name="via"),
        # One decision per person per step.
        UniqueConstraint("request_id", "position", "decider", name="uq_decisions_step_decider"),
        Index("ix_decisions_request", "request_id", "id"),
    )


class RequestHistory(Base):
    """Everything that happened to a request, in order. Append-only."""

    __tablename__ = "request_history"

    id: Mapped[SerialKey]
    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"))
    action: Mapped[str]
    actor: Mapped[str]
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=sql_text("'{}'::jsonb"))
    at: Mapped[InsertedAt]

    __table_args__ = (Index("ix_request_history_request", "request_id", "id"),)


class Delegation(Base):
    """Out of office: the delegate decides for the delegator during the period."""

    __tablename__ = "delegations"

    id: Mapped[UuidKey]
    delegator: Mapped[str]
    delegate: Mapped[str]
    # The delegator's grants when they delegated ({district: [roles]}): approvals learns who
    # holds a role only from callers, so this is what the delegate may stand in for.
    grants: Mapped[dict[str, list[str]]] = mapped_column(JSONB)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    reason: Mapped[str | None]
    created_at: Mapped[InsertedAt]
    revoked_at: Mapped[datetime | None]
    # The delegator, or a manager of their district / the central team.
    revoked_by: Mapped[str | None]

    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="period_ordered"),
        CheckConstraint("delegate <> delegator", name="not_self"),
        Index("ix_delegations_delegate", "delegate", "ends_at"),
        Index("ix_delegations_delegator", "delegator", "ends_at"),
    )


class RosterEntry(Base):
    """Who holds an approver role on a district, as the identity provider says: what a quorum
    of "all" counts. Kept by managers (or a sync from the identity provider)."""

    __tablename__ = "approver_roster"

    district_id: Mapped[str] = mapped_column(primary_key=True)
    role: Mapped[str] = mapped_column(primary_key=True)
    person: Mapped[str] = mapped_column(primary_key=True)
    active: Mapped[bool] = mapped_column(server_default=sql_text("true"))
    created_at: Mapped[InsertedAt]


class ReviewInvite(Base):
    """A single-use, expiring link for an outside reviewer on one step that accepts them.
    Only the token's sha256 is kept."""

    __tablename__ = "review_invites"

    id: Mapped[UuidKey]
    request_id: Mapped[uuid.UUID]
    position: Mapped[int]
    token_hash: Mapped[bytes] = mapped_column(unique=True)
    reviewer_name: Mapped[str]
    reviewer_email: Mapped[str]
    created_by: Mapped[str]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    # The answer given through the link. On a step whose outside answers count it is also a
    # decision; on an advisory step it is only this: advice shown to the approvers.
    outcome: Mapped[str | None]
    comment: Mapped[str | None]
    revoked_at: Mapped[datetime | None]
    created_at: Mapped[InsertedAt]

    __table_args__ = (
        _of_request_step(),
        CheckConstraint(f"outcome IS NULL OR {one_of('outcome', Outcome)}", name="outcome"),
        Index("ix_review_invites_request", "request_id", "position"),
    )
