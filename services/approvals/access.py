"""Who may see and do what in the approvals service, by district: what is its own. The rest
(scopes, ``within``, ``can_read``, ``reaches``, ``is_central``, ``MANAGER_ROLES``) is the
chassis's, imported from ``chassis.districts``; handlers take the caller's scope from
``ScopeDep``.

Districts come from the replica of inventory's tree. A role on a district covers the districts
below it. Requests are read by anyone holding a role on the subject's district or above it;
policies (which a district shares downwards) also from the districts below. Policies are
managed by a manager of their district (company-wide ones by the central team). Deciding is a
question of the step, not of reading: see ``requests.service.eligibility``.
"""

from __future__ import annotations

from chassis.districts import MANAGER_ROLES, DistrictTree, Scope, require_role
from services.approvals.models import districts

# The service's tree, for the repositories' visibility and inheritance filters.
tree = DistrictTree(districts)


def require_manage(scope: Scope, path: str | None, what: str) -> None:
    """403 unless the caller manages the district at `path` (company-wide, None: the central
    team)."""
    require_role(scope, path, MANAGER_ROLES, what)
