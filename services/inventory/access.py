"""What inventory adds to the chassis's rules of who may see and change what
(``chassis.districts``: scopes, ``within``, the manager roles, ``DistrictNotFound``).

A role granted on a district applies to that district and every district below it. Reading
needs any role; managing accounts and districts needs a manager role; asking for an account
needs a contributor or manager role (``REQUESTER_ROLES``). An object in a district the caller
cannot read does not exist for them (404), so ids cannot be probed (OWASP API1).
"""

from __future__ import annotations

from typing import TypeVar

from chassis.districts import MANAGER_ROLES, DistrictTree, Scope
from chassis.errors import Conflict
from services.inventory.models import District

__all__ = ["REQUESTER_ROLES", "taken", "tree"]

# Inventory's own tree: routes that open their own short session (availability, import,
# export) read the caller's scope from it; the others take ``chassis.districts.ScopeDep``.
tree = DistrictTree(District.__table__)  # type: ignore[arg-type]

REQUESTER_ROLES = MANAGER_ROLES | {"contributor"}

ConflictT = TypeVar("ConflictT", bound=Conflict)


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
