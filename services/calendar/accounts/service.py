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
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.districts import Scope, within
from chassis.errors import Unprocessable
from chassis.pagination import Page, PageRequest, keyset_page
from services.calendar.access import optional_district_path
from services.calendar.accounts import repository
from services.calendar.accounts.schemas import AccountOut
from services.calendar.models import Account

TARGETABLE_STATUS = "official"
# Said of every account refused as unknown: calendar learns accounts from inventory's events,
# moments after their registration. Said the same of another district's account, so an
# answer never tells whether an id exists elsewhere.
UNKNOWN_ACCOUNT = (
    "No account that this post may target has this id. One registered moments ago may still "
    "be arriving here: repeat the request with the Chorus-Consistency header that its "
    "registration returned."
)


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
    await repository.upsert_account(session, values)


async def list_accounts(
    session: AsyncSession,
    scope: Scope,
    page: PageRequest,
    *,
    district_id: str | None,
    platform: str | None,
    status: str | None,
) -> Page[AccountOut]:
    """The accounts the caller reads, by platform and handle; `status` None or ``any`` lists
    every status."""
    subtree = await optional_district_path(session, scope, district_id)
    after = page.after_key(str, str, uuid.UUID)
    rows = await repository.list_visible_accounts(
        session,
        scope,
        subtree=subtree,
        platform=platform,
        status=None if status == "any" else status,
        after=after,
        fetch=page.fetch,
    )
    return keyset_page(
        rows,
        page,
        key=lambda a: (a.platform, a.handle, a.id),
        item=AccountOut.model_validate,
    )


async def targetable(
    session: AsyncSession, post_path: str | None, account_ids: Sequence[uuid.UUID]
) -> list[Account]:
    """The accounts, in the order given, if the post (its district at `post_path`; None for the
    company-wide calendar) may target every one of them; else 422 naming each refused one."""
    if not account_ids:
        return []
    found = await repository.find_accounts_with_paths(session, account_ids)
    refused: list[dict[str, str]] = []
    for account_id in account_ids:
        if account_id not in found:
            refused.append(_unknown(account_id))
            continue
        account, path = found[account_id]
        if post_path is not None and (path is None or not within(path, post_path)):
            # Named "unknown" too, word for word: another district's account must not be
            # probed through here.
            refused.append(_unknown(account_id))
        elif account.status != TARGETABLE_STATUS:
            refused.append({"account_id": str(account_id), "reason": account.status})
    if refused:
        detail = "A post targets official accounts of its district or below it only."
        if any(entry["reason"] == "unknown" for entry in refused):
            detail += " " + UNKNOWN_ACCOUNT
        raise TargetNotAllowed(detail, refused=refused)
    return [found[a][0] for a in account_ids]


def _unknown(account_id: uuid.UUID) -> dict[str, str]:
    return {"account_id": str(account_id), "reason": "unknown", "detail": UNKNOWN_ACCOUNT}
