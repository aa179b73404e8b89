"""Who may see and change what in the calendar service, by district.

Districts come from the replica of inventory's tree (``models.districts``). A role on a
district covers the districts below it. Objects with no district (the company-wide calendar,
company campaigns, rules, blackouts and assets) are read by everyone who holds any grant and
changed only by the central team: a regional manager on a top-level district.

- read: any role on the object's district or above;
- write posts and assets: contributor or manager there;
- manage calendars, campaigns, the style guide and blackouts: a manager there.

What a district shares downwards (campaigns, style rules, blackouts, assets of a region) is
seen by the districts below it as well: such objects are visible when they *reach* a district
the caller reads (``reaches`` / ``tree.reaching``), posts and calendars only when the caller
reads their own district (``can_read`` / ``tree.visible``). Those helpers and ``Scope`` are the
chassis's (``chassis.districts``); this module holds only what is the calendar's own: who
writes and who manages.

An object the caller cannot read does not exist for them (404), so ids cannot be probed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.districts import MANAGER_ROLES, DistrictScoped, DistrictTree, Scope, require_role
from chassis.errors import Problem
from services.calendar.models import districts

__all__ = [
    "WRITER_ROLES",
    "delete_managed",
    "district_ids_under",
    "optional_district_path",
    "require_manage",
    "require_manage_district",
    "require_write",
    "tree",
]

WRITER_ROLES = frozenset({"contributor"}) | MANAGER_ROLES

# The service's district tree over its replica (``models.districts``): the SQL filters of the
# repositories (``tree.reaching``, ``tree.applies_to``, ``tree.in_subtree``) and the district
# lookups (``tree.district_path``, ``tree.load_scoped``). The scope of a request comes from
# ``chassis.districts.ScopeDep`` over the same table.
tree = DistrictTree(districts)


def district_ids_under(roots: Sequence[str]) -> Select[str]:
    """SQL for the repositories: the ids of the districts at or below any of `roots` (ltree
    paths), as ``tree.in_subtree`` is for one root."""
    return select(districts.c.id).where(
        text("districts.path <@ CAST(:subtree_roots AS ltree[])").bindparams(
            subtree_roots=list(roots)
        )
    )


def require_write(scope: Scope, path: str | None, what: str) -> None:
    require_role(scope, path, WRITER_ROLES, what)


def require_manage(scope: Scope, path: str | None, what: str) -> None:
    require_role(scope, path, MANAGER_ROLES, what)


async def require_manage_district(
    session: AsyncSession, scope: Scope, district_id: str | None, what: str
) -> str | None:
    """The path of the district a new object goes to (None: company-wide), once the caller is
    known to manage it; a district the caller cannot read is 404."""
    path = await optional_district_path(session, scope, district_id)
    require_manage(scope, path, what)
    return path


async def optional_district_path(
    session: AsyncSession, scope: Scope, district_id: str | None
) -> str | None:
    """The path of the district a caller names, for reading or filtering (None when they name
    none); a district the caller cannot read is 404."""
    if district_id is None:
        return None
    return await tree.district_path(session, scope, district_id)


async def delete_managed(
    session: AsyncSession,
    scope: Scope,
    model: type[DistrictScoped],
    object_id: Any,
    not_found: type[Problem],
    what: str,
) -> None:
    """Delete an object that its district shares downwards, once the caller is known to manage
    that district (the central team for a company-wide one): `not_found` (404) when they
    cannot see it, 403 when they see it but do not manage it."""
    found, path = await tree.load_scoped(session, scope, model, object_id, not_found)
    require_manage(scope, path, what)
    await session.delete(found)
    await session.flush()
