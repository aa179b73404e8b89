"""The accounts a post may target: a read model of the inventory, fed by its account events.

``account.registered`` and ``account.updated`` carry the whole account, ``status_changed`` the
fields that change with the status; each carries the inventory's version of the account, and
a row is only overwritten by an equal or newer version, so a replayed event changes nothing.

A post targets official accounts only, in its own district or below it (any district for the
company-wide calendar). An archived account blocks scheduling; so does any other status than
official, since the account is no longer the organisation's voice.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Select, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.errors import Unprocessable
from services.calendar.access import Scope, within
from services.calendar.models import Account, districts

TARGETABLE_STATUS = "official"


class TargetNotAllowed(Unprocessable):
    type_slug = "target-not-allowed"
    title = "The post cannot target that account"


class AccountEvent(BaseModel):
    """The fields of inventory's account events this read model keeps."""

    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    platform: str
    handle: str
    district_id: str
    status: str
    version: int
    display_name: str | None = None
    profile_url: str | None = None


async def apply_account(session: AsyncSession, account: AccountEvent, *, full: bool) -> None:
    """Upsert from an event; `full` events (registered, updated) also carry display name and
    profile URL, status changes do not (those columns are then left as they are)."""
    values: dict[str, Any] = {
        "id": account.id,
        "platform": account.platform,
        "handle": account.handle,
        "district_id": account.district_id,
        "status": account.status,
        "version": account.version,
    }
    if full:
        values["display_name"] = account.display_name
        values["profile_url"] = account.profile_url
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


def visible_accounts(scope: Scope) -> Select[Account]:
    """Accounts in districts the caller reads."""
    if not scope.read_paths:
        return select(Account).where(Account.id.is_(None))
    return select(Account).where(
        Account.district_id.in_(
            select(districts.c.id).where(
                text("districts.path <@ CAST(:read_paths AS ltree[])").bindparams(
                    read_paths=list(scope.read_paths)
                )
            )
        )
    )


async def targetable(
    session: AsyncSession, post_path: str | None, account_ids: Sequence[uuid.UUID]
) -> list[Account]:
    """The accounts, in the order given, if the post (its district at `post_path`; None for the
    company-wide calendar) may target every one of them; else 422 naming each refused one."""
    if not account_ids:
        return []
    rows = await session.execute(
        select(Account, districts.c.path)
        .join(districts, districts.c.id == Account.district_id, isouter=True)
        .where(Account.id.in_(list(account_ids)))
    )
    found = {account.id: (account, path) for account, path in rows}
    refused: list[dict[str, str]] = []
    for account_id in account_ids:
        if account_id not in found:
            refused.append({"account_id": str(account_id), "reason": "unknown"})
            continue
        account, path = found[account_id]
        if post_path is not None and (path is None or not within(path, post_path)):
            # Named "unknown" too: another district's account must not be probed through here.
            refused.append({"account_id": str(account_id), "reason": "unknown"})
        elif account.status != TARGETABLE_STATUS:
            refused.append({"account_id": str(account_id), "reason": account.status})
    if refused:
        raise TargetNotAllowed(
            "A post targets official accounts of its district or below it only.",
            refused=refused,
        )
    return [found[a][0] for a in account_ids]
