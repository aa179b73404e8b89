"""Cursor pagination with a maximum page size.

A cursor is the sort key of the last item served, opaque to clients (URL-safe base64 of JSON).
Keyset pagination stays fast on deep pages and stable while rows are added, which offsets are
not.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, Select, tuple_
from sqlalchemy.orm import QueryableAttribute

from chassis.errors import BadRequest
from chassis.instants import in_range

DEFAULT_PAGE_SIZE = 50

ItemT = TypeVar("ItemT")
RowT = TypeVar("RowT")
SelectT = TypeVar("SelectT", bound="Select[*tuple[Any, ...]]")


class Page(BaseModel, Generic[ItemT]):
    items: list[ItemT]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the next page; absent on the last page"
    )


class PageRequest(BaseModel):
    limit: int
    after: list[Any] | None

    @property
    def fetch(self) -> int:
        """How many rows a query reads: one more than a page, to know whether another follows."""
        return self.limit + 1

    def after_key(self, *kinds: type) -> tuple[Any, ...] | None:
        """The sort key the cursor carries, parsed as ``cursor_key`` does; None on page one."""
        return None if self.after is None else cursor_key(self.after, *kinds)


class InvalidCursor(BadRequest):
    type_slug = "invalid-cursor"
    title = "Invalid cursor"


def encode_cursor(key: list[Any]) -> str:
    raw = json.dumps(key, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise InvalidCursor("The cursor is not one this API issued.") from exc
    if not isinstance(key, list):
        raise InvalidCursor("The cursor is not one this API issued.")
    return key


def page_request(
    request: Request,
    limit: Annotated[
        int | None, Query(ge=1, description="Items per page (the service's maximum applies)")
    ] = None,
    cursor: Annotated[str | None, Query(max_length=1000, description="From `next_cursor`")] = None,
) -> PageRequest:
    maximum: int = request.app.state.settings.max_page_size
    size = min(limit or DEFAULT_PAGE_SIZE, maximum)
    return PageRequest(limit=size, after=decode_cursor(cursor) if cursor else None)


PageDep = Annotated[PageRequest, Depends(page_request)]


def cursor_key(after: list[Any], *kinds: type) -> tuple[Any, ...]:
    """The sort key a cursor carries, each part parsed as its kind: ``str``, ``int``,
    ``uuid.UUID``, ``datetime.date`` or ``datetime.datetime`` (which must carry its offset).
    A key of another shape is a cursor this API did not issue (400)."""
    if len(after) != len(kinds):
        raise InvalidCursor("The cursor is not one this API issued.")
    key: list[Any] = []
    try:
        for value, kind in zip(after, kinds, strict=True):
            key.append(_parse_key_part(value, kind))
    except (TypeError, ValueError) as exc:
        raise InvalidCursor("The cursor is not one this API issued.") from exc
    return tuple(key)


def _parse_key_part(value: Any, kind: type) -> Any:
    if kind is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(value)
        if not -(2**63) <= value < 2**63:  # what a database integer holds
            raise ValueError(value)
        return value
    if not isinstance(value, str) or "\x00" in value:  # PostgreSQL text holds no NUL
        raise TypeError(value)
    if kind is str:
        return value
    if kind is uuid.UUID:
        return uuid.UUID(value)
    if kind is datetime:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError(value)
        return in_range(parsed)
    if kind is date:
        return date.fromisoformat(value)
    raise TypeError(f"no cursor parser for {kind}")


def keyset_slice(
    query: SelectT,
    columns: Sequence[ColumnElement[Any] | QueryableAttribute[Any]],
    *,
    after: Sequence[Any] | None,
    limit: int,
    descending: bool = False,
) -> SelectT:
    """`query` in the order of `columns` (ascending, or all descending), the last of which is
    unique so the order is total: its first `limit` rows, or those after the key `after` that a
    page's cursor carries (``PageRequest.after_key``). ``keyset_page`` makes the page of them."""
    if after is not None:
        row, key = tuple_(*columns), tuple_(*after)
        query = query.where(row < key if descending else row > key)
    order = [column.desc() for column in columns] if descending else list(columns)
    return query.order_by(*order).limit(limit)


def page_of(
    query: SelectT,
    at: QueryableAttribute[datetime],
    row_id: QueryableAttribute[uuid.UUID],
    page: PageRequest,
    *,
    descending: bool = False,
) -> SelectT:
    """The rows of `query` that `page` asks for, ordered by (`at`, `row_id`): the keyset of most
    lists, whose cursors carry an instant and a UUID."""
    return keyset_slice(
        query,
        (at, row_id),
        after=page.after_key(datetime, uuid.UUID),
        limit=page.fetch,
        descending=descending,
    )


def serial_page_of(query: SelectT, row_id: QueryableAttribute[int], page: PageRequest) -> SelectT:
    """The rows of `query` that `page` asks for, newest first by a serial key (a log)."""
    return keyset_slice(
        query, (row_id,), after=page.after_key(int), limit=page.fetch, descending=True
    )


def keyset_page(
    rows: Sequence[RowT],
    page: PageRequest,
    key: Callable[[RowT], Sequence[Any]],
    item: Callable[[RowT], ItemT],
) -> Page[ItemT]:
    """The page of `rows`, read with ``limit(page.fetch)`` in the order of their keyset: at
    most ``page.limit`` items, each made by `item`, and the cursor of the last one's `key` when
    more rows follow. Keys hold what ``cursor_key`` parses back (``str``, ``int``, UUIDs and
    times as ISO strings)."""
    shown = rows[: page.limit]
    cursor = None
    if len(rows) > page.limit and shown:
        cursor = encode_cursor([_key_part(part) for part in key(shown[-1])])
    return Page[ItemT](items=[item(row) for row in shown], next_cursor=cursor)


def _key_part(part: Any) -> Any:
    if isinstance(part, datetime | date):
        return part.isoformat()
    if isinstance(part, uuid.UUID):
        return str(part)
    return part
