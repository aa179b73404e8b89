"""Who may see and change what, by district.

A role granted on a district applies to that district and every district below it. Reading
needs any role; managing accounts and districts needs a manager role. An object in a district
the caller cannot read does not exist for them (404), so ids cannot be probed (OWASP API1).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.errors import Forbidden
from chassis.principal import Principal
from services.inventory.models import District

MANAGER_ROLES = frozenset({"regional_manager", "district_manager"})


@dataclass(frozen=True)
class Scope:
    """The caller's districts as ltree paths: where they read and where they manage."""

    principal: Principal
    read_paths: tuple[str, ...]
    manage_paths: tuple[str, ...]

    def can_read(self, path: str) -> bool:
        return any(within(path, root) for root in self.read_paths)

    def can_manage(self, path: str) -> bool:
        return any(within(path, root) for root in self.manage_paths)

    def require_manage(self, path: str, what: str = "this district") -> None:
        if not self.can_manage(path):
            raise Forbidden(f"Managing {what} needs a manager role on it or above it.")


def within(path: str, root: str) -> bool:
    """The district at `path` is `root` or below it."""
    return path == root or path.startswith(root + ".")


async def scope_of(session: AsyncSession, principal: Principal) -> Scope:
    if not principal.grants:
        return Scope(principal, (), ())
    rows = await session.execute(
        select(District.id, District.path).where(District.id.in_(list(principal.grants)))
    )
    read: list[str] = []
    manage: list[str] = []
    for district_id, path in rows:
        read.append(path)
        if principal.roles_on(district_id) & MANAGER_ROLES:
            manage.append(path)
    return Scope(principal, tuple(read), tuple(manage))
