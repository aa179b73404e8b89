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
the caller reads (``reaches`` / ``reaching``), posts and calendars only when the caller reads
their own district (``can_read`` / ``visible``).

An object the caller cannot read does not exist for them (404), so ids cannot be probed.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol, TypeVar

from sqlalchemy import ColumnElement, false, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.districts import MANAGER_ROLES, Scope, within
from chassis.districts import scope_of as scope_over
from chassis.errors import Forbidden, NotFound, Problem
from chassis.principal import Principal
from services.calendar.models import districts

__all__ = [
    "CENTRAL_ROLE",
    "MANAGER_ROLES",
    "WRITER_ROLES",
    "DistrictNotFound",
    "Scope",
    "applies_to",
    "can_read",
    "district_path",
    "is_central",
    "load_scoped",
    "path_of",
    "reaches",
    "reaching",
    "require_manage",
    "require_write",
    "scope_of",
    "visible",
    "within",
]

WRITER_ROLES = frozenset({"contributor"}) | MANAGER_ROLES
CENTRAL_ROLE = "regional_manager"


class DistrictNotFound(NotFound):
    type_slug = "district-not-found"
    title = "District not found"


async def scope_of(session: AsyncSession, principal: Principal) -> Scope:
    return await scope_over(session, principal, districts)


def is_central(scope: Scope) -> bool:
    """The caller is on the central team: a regional manager on a top-level district."""
    return any("." not in path for path in scope.paths_with({CENTRAL_ROLE}))


def can_read(scope: Scope, path: str | None) -> bool:
    """May read an object of the district at `path` (None: a company-wide object)."""
    if path is None:
        return bool(scope.read_paths)
    return scope.can_read(path)


def require_write(scope: Scope, path: str | None, what: str) -> None:
    if path is None:
        if not is_central(scope):
            raise Forbidden(f"{what} company-wide needs the central team (a regional manager).")
        return
    scope.require_role(path, WRITER_ROLES, what)


def require_manage(scope: Scope, path: str | None, what: str) -> None:
    if path is None:
        if not is_central(scope):
            raise Forbidden(f"{what} company-wide needs the central team (a regional manager).")
        return
    scope.require_role(path, MANAGER_ROLES, what)


def reaches(scope: Scope, path: str | None) -> bool:
    """May see an object of the district at `path` that applies to it and the districts
    below it (None: company-wide): it lies in a district the caller reads, or above one."""
    if path is None:
        return bool(scope.read_paths)
    return any(within(path, root) or within(root, path) for root in scope.read_paths)


async def path_of(session: AsyncSession, district_id: str | None) -> str | None:
    """The district's path; None for company-wide, or for a district the replica does not
    know (callers then treat its objects as unseen)."""
    if district_id is None:
        return None
    path = await session.scalar(select(districts.c.path).where(districts.c.id == district_id))
    return None if path is None else str(path)


async def district_path(session: AsyncSession, scope: Scope, district_id: str) -> str:
    """The path of a district the caller can read, or 404."""
    path = await session.scalar(select(districts.c.path).where(districts.c.id == district_id))
    if path is None or not scope.can_read(path):
        raise DistrictNotFound(f"No district {district_id!r}.")
    return str(path)


class DistrictScoped(Protocol):
    district_id: Any


ScopedT = TypeVar("ScopedT", bound=DistrictScoped)


async def load_scoped(
    session: AsyncSession,
    scope: Scope,
    model: type[ScopedT],
    object_id: uuid.UUID,
    not_found: type[Problem],
    *,
    shared_down: bool = True,
    for_update: bool = False,
) -> tuple[ScopedT, str | None]:
    """The object with its district's path (None: company-wide), or `not_found` (404) when
    the caller may not see it: by ``reaches`` for what a district shares downwards, by
    ``can_read`` otherwise. An object of a district the replica does not know is unseen."""
    obj = await session.get(model, object_id, with_for_update=for_update)
    if obj is not None:
        path = await path_of(session, obj.district_id)
        known = obj.district_id is None or path is not None
        seen = reaches(scope, path) if shared_down else can_read(scope, path)
        if known and seen:
            return obj, path
    raise not_found(f"No {not_found.title.lower().removesuffix(' not found')} {object_id}.")


def visible(district_column: Any, scope: Scope) -> ColumnElement[bool]:
    """SQL: rows whose district the caller reads (company-wide rows included)."""
    if not scope.read_paths:
        return false()
    return or_(
        district_column.is_(None),
        district_column.in_(
            select(districts.c.id).where(
                text("districts.path <@ CAST(:read_paths AS ltree[])").bindparams(
                    read_paths=list(scope.read_paths)
                )
            )
        ),
    )


def reaching(district_column: Any, scope: Scope) -> ColumnElement[bool]:
    """SQL: rows the caller may see by ``reaches``: company-wide rows, and those of the
    districts they read, below them or above them."""
    if not scope.read_paths:
        return false()
    return or_(
        district_column.is_(None),
        district_column.in_(
            select(districts.c.id).where(
                text(
                    "(districts.path <@ CAST(:reach_paths AS ltree[])"
                    " OR districts.path @> CAST(:reach_paths AS ltree[]))"
                ).bindparams(reach_paths=list(scope.read_paths))
            )
        ),
    )


def applies_to(district_column: Any, path: str | None) -> ColumnElement[bool]:
    """SQL: rows that apply to the district at `path`: company-wide rows and those of the
    district or its ancestors (a style rule, a blackout, a campaign). With `path` None (the
    company-wide calendar) only company-wide rows apply."""
    if path is None:
        company_only: ColumnElement[bool] = district_column.is_(None)
        return company_only
    return or_(
        district_column.is_(None),
        district_column.in_(
            select(districts.c.id).where(
                text("districts.path @> CAST(:target_path AS ltree)").bindparams(target_path=path)
            )
        ),
    )
