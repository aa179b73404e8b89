"""Models of the style guide: rules, lint requests and their violations."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.calendar.posts.schemas import PostContent


class LintSubject(BaseModel):
    """What lint checks: the content, and where and when it goes out."""

    model_config = ConfigDict(extra="forbid")

    content: PostContent
    platforms: list[str] = Field(default_factory=list, description="Platforms of the targets")
    account_ids: list[uuid.UUID] = Field(default_factory=list)
    publish_at: datetime | None = None
    post_id: uuid.UUID | None = Field(default=None, description="The post itself (not crowding)")


class Position(BaseModel):
    """Where in the post: the field (``text``, ``link``, ``media[0].alt_text``,
    ``variants.instagram.text``, ``publish_at``...) and a character span when it is text."""

    field: str
    start: int | None = None
    end: int | None = None


class Violation(BaseModel):
    rule_id: uuid.UUID | None = Field(description="The style rule; None for a blackout")
    kind: str = Field(description="The rule kind (banned_term, ..., blackout)")
    severity: Literal["error", "warning"]
    message: str
    platform: str | None = None
    position: Position


class LintReport(BaseModel):
    violations: list[Violation]
    errors: int
    warnings: int

    @classmethod
    def of(cls, violations: list[Violation]) -> LintReport:
        errors = sum(1 for v in violations if v.severity == "error")
        return cls(violations=violations, errors=errors, warnings=len(violations) - errors)
