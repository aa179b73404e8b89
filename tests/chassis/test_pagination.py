"""Cursors: what a cursor carries comes back as the same sort key; anything else is 400."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import Column, DateTime, Integer, MetaData, Table, select
from sqlalchemy.dialects import postgresql

from chassis.pagination import (
    InvalidCursor,
    PageRequest,
    cursor_key,
    decode_cursor,
    encode_cursor,
    keyset_page,
    keyset_slice,
)


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


def test_a_keyset_page_shows_the_limit_and_points_past_its_last_row() -> None:
    rows = [(datetime(2031, 3, day, tzinfo=UTC), uuid.uuid4()) for day in range(1, 5)]
    page = PageRequest(limit=3, after=None)
    assert page.fetch == 4
    first = keyset_page(rows, page, key=lambda r: r, item=lambda r: str(r[1]))
    assert first.items == [str(r[1]) for r in rows[:3]]
    assert first.next_cursor is not None
    # The cursor carries the last shown row's key, which cursor_key reads back as it was.
    assert cursor_key(decode_cursor(first.next_cursor), datetime, uuid.UUID) == rows[2]
    last = keyset_page(rows[3:], page, key=lambda r: r, item=lambda r: str(r[1]))
    assert last.items == [str(rows[3][1])]
    assert last.next_cursor is None
    assert keyset_page([], page, key=lambda r: r, item=str).items == []


def _sql(query: Any) -> str:
    return " ".join(str(query.compile(dialect=postgresql.dialect())).split())


def test_a_keyset_slice_reads_after_the_cursor_in_its_order() -> None:
    things = Table("things", MetaData(), Column("at", DateTime), Column("id", Integer))
    columns = (things.c.at, things.c.id)
    first = keyset_slice(select(things), columns, after=None, limit=11)
    assert _sql(first).endswith("ORDER BY things.at, things.id LIMIT %(param_1)s::INTEGER")
    assert "WHERE" not in _sql(first)
    later = keyset_slice(select(things), columns, after=(1, 2), limit=11, descending=True)
    assert "WHERE (things.at, things.id) < (%(param_1)s::INTEGER, %(param_2)s::INTEGER)" in _sql(
        later
    )
    assert _sql(later).endswith(
        "ORDER BY things.at DESC, things.id DESC LIMIT %(param_3)s::INTEGER"
    )


def test_page_one_has_no_key_and_an_empty_key_is_not_a_cursor() -> None:
    assert PageRequest(limit=10, after=None).after_key(int) is None
    assert PageRequest(limit=10, after=[3]).after_key(int) == (3,)
    with pytest.raises(InvalidCursor):
        PageRequest(limit=10, after=[]).after_key(int)
