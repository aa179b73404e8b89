"""Instants the API accepts: aware, and between the years 1900 and 3000.

PostgreSQL and Python hold the years 1 to 9999 only, and services add days to instants (lint,
feeds, views, deadlines): a time near either end would fail in the database or in that
arithmetic instead of being refused (422). Nothing Chorus plans lies outside these years.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)


def in_range(value: datetime) -> datetime:
    """An aware instant from EARLIEST up to LATEST, else ValueError."""
    if not EARLIEST <= value < LATEST:
        raise ValueError("give a time from the year 1900 up to the year 3000")
    return value


Instant = Annotated[AwareDatetime, AfterValidator(in_range)]
