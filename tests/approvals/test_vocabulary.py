"""The vocabularies of approvals as a user states them: what the database accepts for each
status, outcome and kind is exactly these words, and the service's enums say the same. The
expected words are written out here, not read from the code under test."""

from __future__ import annotations

import re
from enum import StrEnum

import pytest
from sqlalchemy import text

from services.approvals.vocabulary import (
    Outcome,
    OutsideReviewMode,
    RequestStatus,
    StepStatus,
    SubjectKind,
    Via,
)
from tests.kit import RunningService

pytestmark = pytest.mark.asyncio

STATED = [
    # A request is open until granted, rejected, sent back for changes, superseded by a newer
    # submission, expired at its publish time, or withdrawn with its subject.
    (
        "requests",
        "status",
        RequestStatus,
        {"open", "granted", "rejected", "changes_requested", "superseded", "expired", "withdrawn"},
    ),
    # A step waits its turn, is decided while active, and ends approved, rejected, sent back,
    # or closed with its request.
    (
        "request_steps",
        "status",
        StepStatus,
        {"waiting", "active", "approved", "rejected", "changes_requested", "closed"},
    ),
    ("requests", "subject_kind", SubjectKind, {"post", "account_request"}),
    ("policies", "subject_kind", SubjectKind, {"post", "account_request"}),
    ("decisions", "outcome", Outcome, {"approve", "reject", "request_changes"}),
    ("decisions", "via", Via, {"grant", "delegation", "escalation", "external"}),
    ("request_steps", "outside_review", OutsideReviewMode, {"none", "advisory", "counted"}),
]


async def allowed_by_the_database(service: RunningService, table: str, name: str) -> set[str]:
    """The words the table's check constraint `name` lets through, as PostgreSQL keeps it."""
    async with service.sessions() as session:
        definition = await session.scalar(
            text(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = CAST(:table AS regclass) AND conname = :name"
            ),
            {"table": table, "name": f"ck_{table}_{name}"},
        )
    assert definition is not None, f"no check constraint {name} on {table}"
    return set(re.findall(r"'([a-z_]+)'", definition))


@pytest.mark.parametrize(
    ("table", "column", "vocabulary", "words"),
    STATED,
    ids=[f"{table}.{column}" for table, column, _, _ in STATED],
)
async def test_each_vocabulary_is_the_stated_words_in_code_and_database(
    approvals: RunningService,
    table: str,
    column: str,
    vocabulary: type[StrEnum],
    words: set[str],
) -> None:
    assert {str(member) for member in vocabulary} == words
    assert await allowed_by_the_database(approvals, table, column) == words
