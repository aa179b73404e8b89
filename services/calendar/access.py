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

from chassis.districts import (
    CENTRAL_ROLE,
    MANAGER_ROLES,
    DistrictNotFound,
    DistrictTree,
    Scope,
    can_read,
    is_central,
    reaches,
    require_role,
    within,
)
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

tree = DistrictTree(districts)
scope_of = tree.scope_of
path_of = tree.path_of
district_path = tree.district_path
load_scoped = tree.load_scoped
visible = tree.visible
reaching = tree.reaching
applies_to = tree.applies_to


def require_write(scope: Scope, path: str | None, what: str) -> None:
    require_role(scope, path, WRITER_ROLES, what)


def require_manage(scope: Scope, path: str | None, what: str) -> None:
    require_role(scope, path, MANAGER_ROLES, what)
