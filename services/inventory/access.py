"""Who may see and change what, by district, over inventory's own tree.

A role granted on a district applies to that district and every district below it. Reading
needs any role; managing accounts and districts needs a manager role. An object in a district
the caller cannot read does not exist for them (404), so ids cannot be probed (OWASP API1).
The rules themselves are the chassis's (`chassis.districts`), shared with every service.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from chassis.districts import MANAGER_ROLES, Scope, within
from chassis.districts import scope_of as scope_over
from chassis.principal import Principal
from services.inventory.models import District

__all__ = ["MANAGER_ROLES", "Scope", "scope_of", "within"]


async def scope_of(session: AsyncSession, principal: Principal) -> Scope:
    return await scope_over(session, principal, District.__table__)  # type: ignore[arg-type]
