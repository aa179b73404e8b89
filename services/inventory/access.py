"""Who may see and change what, by district, over inventory's own tree.

A role granted on a district applies to that district and every district below it. Reading
needs any role; managing accounts and districts needs a manager role. An object in a district
the caller cannot read does not exist for them (404), so ids cannot be probed (OWASP API1).
The rules themselves are the chassis's (`chassis.districts`), shared with every service.
"""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from chassis.districts import MANAGER_ROLES, Scope, within
from chassis.districts import scope_of as scope_over
from chassis.errors import Conflict
from chassis.principal import Principal
from services.inventory.models import District

__all__ = ["MANAGER_ROLES", "Scope", "scope_of", "taken", "within"]

ConflictT = TypeVar("ConflictT", bound=Conflict)


async def scope_of(session: AsyncSession, principal: Principal) -> Scope:
    return await scope_over(session, principal, District.__table__)  # type: ignore[arg-type]


def taken(
    error: type[ConflictT], scope: Scope, path: str | None, message: str, **names: str
) -> ConflictT:
    """The 409 for a handle that an account or an open request already holds. It names the
    holder (`names`: its id, its district) only to a caller who can read the holder's district
    (`path`); anyone else learns that the handle is taken, not where nor by what, so ids of
    other districts cannot be probed through a conflict (OWASP API1). Registration and
    requests both answer through this one rule."""
    if path is not None and scope.can_read(path):
        return error(f"{message}.", **names)
    return error(f"{message}, in a district you do not see.")
