"""Who may see and do what in the approvals service, by district.

Districts come from the replica of inventory's tree. A role on a district covers the districts
below it. Requests are read by anyone holding a role on the subject's district or above it;
policies (which a district shares downwards) also from the districts below. Policies are
managed by a manager of their district (company-wide ones by the central team). Deciding is a
question of the step, not of reading: see ``requests.eligibility``.
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
from services.approvals.models import districts

__all__ = [
    "CENTRAL_ROLE",
    "MANAGER_ROLES",
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
    "scope_of",
    "tree",
    "visible",
    "within",
]

tree = DistrictTree(districts)
scope_of = tree.scope_of
path_of = tree.path_of
district_path = tree.district_path
load_scoped = tree.load_scoped
visible = tree.visible
reaching = tree.reaching
applies_to = tree.applies_to


def require_manage(scope: Scope, path: str | None, what: str) -> None:
    require_role(scope, path, MANAGER_ROLES, what)
