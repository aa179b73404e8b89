"""Cursors: what a cursor carries comes back as the same sort key; anything else is 400."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest

from chassis.pagination import InvalidCursor, cursor_key, decode_cursor, encode_cursor


def test_a_key_round_trips_through_a_cursor() -> None:
    at = datetime(2031, 3, 1, 8, 30, tzinfo=UTC)
    last = uuid.uuid4()
    cursor = encode_cursor([at.isoformat(), str(last), "fr", 7, "2031-03-01"])
    key = cursor_key(decode_cursor(cursor), datetime, uuid.UUID, str, int, date)
    assert key == (at, last, "fr", 7, date(2031, 3, 1))


@pytest.mark.parametrize(
    ("after", "kinds"),
    [
        (["2031-03-01T08:30:00"], (datetime,)),  # no offset: ambiguous
        (["not a time"], (datetime,)),
        (["nope"], (uuid.UUID,)),
        ([1], (str,)),
        (["1"], (int,)),
        ([True], (int,)),
        (["a", "b"], (str,)),
        ([], (str,)),
        ([None], (date,)),
        ([2**63], (int,)),
        (["a\x00b"], (str,)),
        (["0001-01-01T00:00:00+00:00"], (datetime,)),
    ],
)
def test_a_foreign_key_is_an_invalid_cursor(after: list[Any], kinds: tuple[type, ...]) -> None:
    with pytest.raises(InvalidCursor):
        cursor_key(after, *kinds)
