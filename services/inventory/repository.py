"""Queries that several modules of the inventory share: a row with the path of its district,
the filters that keep a query to the caller's districts or to one subtree, and the newest-first
keyset of the lists.

Accounts, account requests and takedown cases each belong to a district; who may see one
follows that district's path (``access.get_visible``), so each is read with it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.pagination import keyset_slice
from services.inventory.models import Account, AccountRequest, District, TakedownCase

DistrictRowT = TypeVar("DistrictRowT", Account, AccountRequest, TakedownCase)
SelectT = TypeVar("SelectT", bound="Select[*tuple[Any, ...]]")


async def get_with_path(
    session: AsyncSession, model: type[DistrictRowT], row_id: uuid.UUID, *, for_update: bool = False
) -> tuple[DistrictRowT, str] | None:
    """The row of `model` and its district's path; with `for_update`, the row (not the
    district) is locked until the transaction ends."""
    query = (
        select(model, District.path)
        .join(District, District.id == model.district_id)
        .where(model.id == row_id)
    )
    if for_update:
        query = query.with_for_update(of=model)
    row = (await session.execute(query)).first()
    return (row[0], row[1]) if row else None


def in_districts(query: SelectT, read_paths: Sequence[str], under: str | None = None) -> SelectT:
    """`query`, which reads ``districts``, kept to the districts at or below `read_paths` (the
    caller's) and, with `under`, to that subtree."""
    query = query.where(
        text("districts.path <@ CAST(:read_paths AS ltree[])").bindparams(
            read_paths=list(read_paths)
        )
    )
    if under is not None:
        query = query.where(text("districts.path <@ CAST(:under AS ltree)").bindparams(under=under))
    return query


def newest_first(
    query: SelectT,
    model: type[AccountRequest | TakedownCase],
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> SelectT:
    """`query` in (created_at, id) order, newest first: the `limit` rows after the key `after`
    of a page's cursor."""
    return keyset_slice(
        query, (model.created_at, model.id), after=after, limit=limit, descending=True
    )
