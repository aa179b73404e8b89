"""What inventory adds to the chassis's rules of who may see and change what
(``chassis.districts``: scopes, ``within``, the manager roles, ``DistrictNotFound``).

A role granted on a district applies to that district and every district below it. Reading
needs any role; managing accounts and districts needs a manager role; asking for an account
needs a contributor or manager role (``REQUESTER_ROLES``). An object in a district the caller
cannot read does not exist for them (404), so ids cannot be probed (OWASP API1).
"""

from __future__ import annotations

import uuid
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from chassis.districts import MANAGER_ROLES, DistrictTree, Scope
from chassis.errors import Conflict, NotFound
from services.inventory import repository
from services.inventory.models import District
from services.inventory.repository import DistrictRowT

__all__ = ["REQUESTER_ROLES", "get_visible", "taken", "tree"]

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


async def get_visible(
    session: AsyncSession,
    scope: Scope,
    model: type[DistrictRowT],
    row_id: uuid.UUID,
    not_found: type[NotFound],
    *,
    for_update: bool = False,
) -> tuple[DistrictRowT, str]:
    """The row of `model` and its district's path, or `not_found` (404) when there is no such
    row or the caller cannot read its district. The 404 is worded as ``tree.load_scoped``
    words it, from the error's title ("Account not found": "No account <id>.")."""
    found = await repository.get_with_path(session, model, row_id, for_update=for_update)
    if found is None or not scope.can_read(found[1]):
        raise not_found(f"No {not_found.title.lower().removesuffix(' not found')} {row_id}.")
    return found
