"""Every query of the availability module: which handles are in the inventory already."""

from __future__ import annotations

import uuid

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.inventory.models import Account, District


async def find_registered(
    session: AsyncSession, keys: dict[str, str]
) -> dict[str, tuple[uuid.UUID, str]]:
    """platform -> (account id, district path) of the accounts with these handle keys
    (`keys`: platform -> handle key)."""
    if not keys:
        return {}
    rows = await session.execute(
        select(Account.platform, Account.id, District.path)
        .join(District, District.id == Account.district_id)
        .where(tuple_(Account.platform, Account.handle_key).in_(list(keys.items())))
    )
    return {platform: (account_id, path) for platform, account_id, path in rows}
