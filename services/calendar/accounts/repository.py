"""Every query of the accounts read model."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.districts import Scope
from chassis.pagination import keyset_slice
from services.calendar.access import district_ids_under, tree
from services.calendar.models import Account, districts


async def upsert_account(session: AsyncSession, values: dict[str, Any]) -> None:
    """Insert the account, or overwrite the stored row when `values` carry an equal or newer
    ``version`` (a replayed or late event changes nothing)."""
    statement = insert(Account).values(**values)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[Account.id],
            set_={
                **{k: statement.excluded[k] for k in values if k != "id"},
                "updated_at": func.now(),
            },
            where=Account.version <= statement.excluded.version,
        )
    )


def _visible(scope: Scope) -> Select[Account]:
    """Accounts in districts the caller reads."""
    if not scope.read_paths:
        return select(Account).where(Account.id.is_(None))
    return select(Account).where(Account.district_id.in_(district_ids_under(scope.read_paths)))


async def list_visible_accounts(
    session: AsyncSession,
    scope: Scope,
    *,
    subtree: str | None,
    platform: str | None,
    status: str | None,
    after: tuple[str, str, uuid.UUID] | None,
    fetch: int,
) -> list[Account]:
    """Accounts the caller reads, by platform, handle and id after the keyset `after`: only
    those in the district at path `subtree` and below when given, of `platform` and `status`
    when given."""
    query = _visible(scope)
    if subtree is not None:
        query = query.where(tree.in_subtree(Account.district_id, subtree))
    if platform is not None:
        query = query.where(Account.platform == platform)
    if status is not None:
        query = query.where(Account.status == status)
    query = keyset_slice(
        query, (Account.platform, Account.handle, Account.id), after=after, limit=fetch
    )
    return list(await session.scalars(query))


async def find_accounts_with_paths(
    session: AsyncSession, account_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[Account, str | None]]:
    """The accounts among `account_ids` the read model knows, each with its district's path
    (None when the replica does not know that district)."""
    rows = await session.execute(
        select(Account, districts.c.path)
        .join(districts, districts.c.id == Account.district_id, isouter=True)
        .where(Account.id.in_(list(account_ids)))
    )
    return {account.id: (account, path) for account, path in rows}
