"""Who may manage which endpoints: managers of the endpoint's district or above it (company-wide
endpoints, with no district filter: the central team). Everyone else gets 404, as for any
object they may not see. The rest (scopes, ``is_central``) is the chassis's."""

from __future__ import annotations

from chassis.districts import DistrictTree, Scope, is_central
from services.webhooks.models import districts

tree = DistrictTree(districts)


def manages(scope: Scope, path: str | None) -> bool:
    """The caller manages an endpoint of the district at `path` (None: company-wide)."""
    return is_central(scope) if path is None else scope.can_manage(path)
