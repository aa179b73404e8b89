"""Every query of the accounts module."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, delete, exists, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from chassis.districts import Scope
from services.inventory.accounts.schemas import AccountFilters
from services.inventory.models import Account, AccountFlag, AccountOwner, District
from services.inventory.repository import in_districts

PerAccountT = TypeVar("PerAccountT", AccountOwner, AccountFlag)


async def find_by_key(session: AsyncSession, platform: str, handle_key: str) -> Account | None:
    return (
        await session.execute(
            select(Account).where(Account.platform == platform, Account.handle_key == handle_key)
        )
    ).scalar_one_or_none()


async def owners_of(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[AccountOwner]]:
    return await _per_account(
        session, AccountOwner, ids, order_by=(AccountOwner.role.desc(), AccountOwner.person)
    )


async def open_flags_of(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[AccountFlag]]:
    return await _per_account(
        session, AccountFlag, ids, AccountFlag.resolved_at.is_(None), order_by=(AccountFlag.id,)
    )


async def _per_account(
    session: AsyncSession,
    model: type[PerAccountT],
    ids: Sequence[uuid.UUID],
    *conditions: ColumnElement[bool],
    order_by: Sequence[ColumnElement[Any] | InstrumentedAttribute[Any]],
) -> dict[uuid.UUID, list[PerAccountT]]:
    """The rows of `model` of the accounts `ids` that meet `conditions`, in `order_by` order,
    by account; the query runs only when there are accounts to read."""
    found: dict[uuid.UUID, list[PerAccountT]] = defaultdict(list)
    if ids:
        query = select(model).where(model.account_id.in_(ids), *conditions).order_by(*order_by)
        for row in (await session.execute(query)).scalars():
            found[row.account_id].append(row)
    return found


async def replace_owners(
    session: AsyncSession, account_id: uuid.UUID, owners: Sequence[dict[str, object]]
) -> None:
    await session.execute(delete(AccountOwner).where(AccountOwner.account_id == account_id))
    if owners:
        await session.execute(
            insert(AccountOwner), [{"account_id": account_id, **owner} for owner in owners]
        )


async def search(
    session: AsyncSession,
    scope: Scope,
    filters: AccountFilters,
    *,
    after: tuple[str, str] | None,
    limit: int,
    district_path: str | None,
) -> list[Account]:
    # Plans for these filters depend on the values (a text pattern, a rare owner): a generic
    # plan of the prepared statement would walk the ordered index instead of the trigram one.
    await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    query = in_districts(
        select(Account).join(District, District.id == Account.district_id),
        scope.read_paths,
        district_path,
    )
    if filters.platform:
        query = query.where(Account.platform == filters.platform)
    if filters.statuses:
        query = query.where(Account.status.in_(filters.statuses))
    if filters.tag:
        query = query.where(Account.tags.contains([filters.tag]))
    if filters.owner:
        query = query.where(
            exists().where(
                AccountOwner.account_id == Account.id, AccountOwner.person == filters.owner
            )
        )
    if filters.flagged is not None:
        flagged = exists().where(
            AccountFlag.account_id == Account.id, AccountFlag.resolved_at.is_(None)
        )
        query = query.where(flagged if filters.flagged else ~flagged)
    if filters.text:
        pattern = (
            "%"
            + filters.text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            + "%"
        )
        query = query.where(Account.search_text.like(pattern))
    if after is not None:
        query = query.where(func.row(Account.platform, Account.handle_key) > func.row(*after))
    query = query.order_by(Account.platform, Account.handle_key).limit(limit)
    return list((await session.execute(query)).scalars())


async def summary(
    session: AsyncSession, scope: Scope, district_path: str | None
) -> list[tuple[str, str, str, int]]:
    # The districts first, as ids: the count then reads the covering index
    # (district_id, platform, status) alone, without joining the tree row by row.
    in_scope = in_districts(select(District.id), scope.read_paths, district_path)
    district_ids = list(await session.scalars(in_scope))
    query = select(Account.district_id, Account.platform, Account.status, func.count()).where(
        Account.district_id.in_(district_ids)
    )
    query = query.group_by(Account.district_id, Account.platform, Account.status).order_by(
        Account.district_id, Account.platform, Account.status
    )
    return [(d, p, s, int(n)) for d, p, s, n in await session.execute(query)]
