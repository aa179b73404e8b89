"""Every query of the accounts module."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, delete, exists, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.districts import Scope
from services.inventory.models import Account, AccountFlag, AccountOwner, District

SelectT = TypeVar("SelectT", bound="Select[*tuple[Any, ...]]")


@dataclass(frozen=True)
class AccountFilters:
    district_id: str | None = None  # this district and below
    platform: str | None = None
    statuses: tuple[str, ...] = ()
    owner: str | None = None
    flagged: bool | None = None
    tag: str | None = None
    text: str | None = None


def _in_scope(query: SelectT, paths: Sequence[str]) -> SelectT:
    return query.join(District, District.id == Account.district_id).where(
        text("districts.path <@ CAST(:scope_paths AS ltree[])").bindparams(scope_paths=list(paths))
    )


async def get_with_path(
    session: AsyncSession, account_id: uuid.UUID, *, for_update: bool = False
) -> tuple[Account, str] | None:
    query = (
        select(Account, District.path)
        .join(District, District.id == Account.district_id)
        .where(Account.id == account_id)
    )
    if for_update:
        query = query.with_for_update(of=Account)
    row = (await session.execute(query)).first()
    return (row[0], row[1]) if row else None


async def find_by_key(session: AsyncSession, platform: str, handle_key: str) -> Account | None:
    return (
        await session.execute(
            select(Account).where(Account.platform == platform, Account.handle_key == handle_key)
        )
    ).scalar_one_or_none()


async def owners_of(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[AccountOwner]]:
    found: dict[uuid.UUID, list[AccountOwner]] = defaultdict(list)
    if ids:
        rows = await session.execute(
            select(AccountOwner)
            .where(AccountOwner.account_id.in_(ids))
            .order_by(AccountOwner.role.desc(), AccountOwner.person)
        )
        for owner in rows.scalars():
            found[owner.account_id].append(owner)
    return found


async def open_flags_of(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[AccountFlag]]:
    found: dict[uuid.UUID, list[AccountFlag]] = defaultdict(list)
    if ids:
        rows = await session.execute(
            select(AccountFlag)
            .where(AccountFlag.account_id.in_(ids), AccountFlag.resolved_at.is_(None))
            .order_by(AccountFlag.id)
        )
        for flag in rows.scalars():
            found[flag.account_id].append(flag)
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
    query = _in_scope(select(Account), scope.read_paths)
    if district_path is not None:
        query = query.where(
            text("districts.path <@ CAST(:under AS ltree)").bindparams(under=district_path)
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
    in_scope = select(District.id).where(
        text("districts.path <@ CAST(:scope_paths AS ltree[])").bindparams(
            scope_paths=list(scope.read_paths)
        )
    )
    if district_path is not None:
        in_scope = in_scope.where(
            text("districts.path <@ CAST(:under AS ltree)").bindparams(under=district_path)
        )
    district_ids = list(await session.scalars(in_scope))
    query = select(Account.district_id, Account.platform, Account.status, func.count()).where(
        Account.district_id.in_(district_ids)
    )
    query = query.group_by(Account.district_id, Account.platform, Account.status).order_by(
        Account.district_id, Account.platform, Account.status
    )
    return [(d, p, s, int(n)) for d, p, s, n in await session.execute(query)]
