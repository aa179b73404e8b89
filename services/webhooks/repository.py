"""Queries several modules of the service share: the keyset page of a list."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.orm import QueryableAttribute

from chassis.pagination import PageRequest, SelectT, keyset_slice


def page_of(
    query: SelectT,
    at: QueryableAttribute[datetime],
    row_id: QueryableAttribute[uuid.UUID],
    page: PageRequest,
    *,
    descending: bool = False,
) -> SelectT:
    """The rows of `query` that `page` asks for, ordered by (`at`, `row_id`)."""
    return keyset_slice(
        query,
        (at, row_id),
        after=page.after_key(datetime, uuid.UUID),
        limit=page.fetch,
        descending=descending,
    )


def serial_page_of(query: SelectT, row_id: QueryableAttribute[int], page: PageRequest) -> SelectT:
    """The rows of `query` that `page` asks for, newest first by a serial key."""
    return keyset_slice(
        query, (row_id,), after=page.after_key(int), limit=page.fetch, descending=True
    )
