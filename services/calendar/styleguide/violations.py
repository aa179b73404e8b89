"""A lint finding and where it is: what lint reports, and what a post write answers with.

Kept apart from the style guide's other models, which lean on the posts' content models, so
that the posts' response can carry the findings of its write without an import cycle.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel, Field

from services.calendar.vocabulary import Severity


class Position(BaseModel):
    """Where in the post: the field (``text``, ``link``, ``media[0].alt_text``,
    ``variants.instagram.text``, ``publish_at``...) and a character span when it is text."""

    field: str
    start: int | None = None
    end: int | None = None


class Violation(BaseModel):
    rule_id: uuid.UUID | None = Field(
        description="The style rule; None for built-in checks (platform_limit, blackout, "
        "asset_rights_expired)"
    )
    kind: str = Field(
        description="The rule kind (banned_term, ...), or a built-in check: platform_limit, "
        "blackout, asset_rights_expired"
    )
    severity: Severity
    message: str
    platform: str | None = None
    position: Position
    asset_id: uuid.UUID | None = Field(
        default=None, description="The asset concerned (asset_rights_expired)"
    )
