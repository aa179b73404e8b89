"""The principal: who is calling and their roles per district, as the gateway hands it over.

The gateway verifies the caller's JWT and forwards the principal in the ``X-Chorus-Principal``
header: ``base64url(json) "." base64url(hmac_sha256(internal_key, base64url(json)))``. The
payload carries a short expiry, so a captured header is useless within a minute. A service
refuses a request whose header is missing, malformed, expired or signed with another key, so a
request that bypasses the gateway gets nowhere.

Grants are per district id; a role on a district applies to the districts below it (answered by
the district replica once inventory publishes the tree). A grant names one of ``ROLES`` on a
district id of the form ``DISTRICT_ID_PATTERN`` (the form inventory gives its districts).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chassis.errors import Unauthorized

PRINCIPAL_HEADER = "x-chorus-principal"
# A service's routes under this prefix take no principal: they authenticate their callers
# themselves (a calendar feed token, a scheduler's webhook signature). The gateway forwards
# them without asking for a JWT.
PUBLIC_PREFIX = "/public"
DEFAULT_TTL_SECONDS = 60
# Clock skew tolerated between the gateway's clock and a service's.
CLOCK_SKEW_SECONDS = 5

# The id of a district, a stable slug; one ltree label, so a path is ids joined by dots.
DISTRICT_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"

# Every role, and the roles each one includes: holding a role is holding everything below it
# too, on the same districts. Managers rank above the people they manage. The approvers
# (approver, brand, legal) are functions, not ranks: no role includes them, so a manager
# decides an approval step only where the step asks for a manager. The README has the table.
ROLE_INCLUDES: dict[str, tuple[str, ...]] = {
    "regional_manager": ("district_manager",),
    "district_manager": ("contributor", "analyst"),
    "contributor": ("viewer",),
    "approver": ("viewer",),
    "brand": ("viewer",),
    "legal": ("viewer",),
    "analyst": ("viewer",),
    "viewer": (),
}
ROLES = tuple(ROLE_INCLUDES)


def effective_roles(granted: Iterable[str]) -> frozenset[str]:
    """The granted roles with every role they include, transitively. An unknown role (from an
    identity provider's claim) stays as it is and includes nothing."""
    held: set[str] = set()
    pending = list(granted)
    while pending:
        role = pending.pop()
        if role not in held:
            held.add(role)
            pending.extend(ROLE_INCLUDES.get(role, ()))
    return frozenset(held)


class Principal(BaseModel):
    model_config = ConfigDict(frozen=True)

    sub: str = Field(min_length=1, max_length=200, description="The user id")
    name: str | None = Field(default=None, max_length=200)
    grants: dict[str, frozenset[str]] = Field(
        default_factory=dict, description="district id -> roles held there"
    )
    exp: int = Field(description="Unix time after which the header is refused")
    request_id: str | None = Field(default=None, max_length=200)

    def roles_on(self, district_id: str) -> frozenset[str]:
        return self.grants.get(district_id, frozenset())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def _mac(key: bytes, body: str) -> str:
    return _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())


def sign_principal(
    key: bytes,
    *,
    sub: str,
    grants: dict[str, list[str]] | dict[str, frozenset[str]],
    name: str | None = None,
    request_id: str | None = None,
    ttl: int = DEFAULT_TTL_SECONDS,
) -> str:
    payload: dict[str, Any] = {
        "sub": sub,
        "grants": {district: sorted(roles) for district, roles in grants.items()},
        "exp": int(time.time()) + ttl,
    }
    if name is not None:
        payload["name"] = name
    if request_id is not None:
        payload["request_id"] = request_id
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_mac(key, body)}"


def verify_principal(key: bytes, header: str | None) -> Principal:
    if not header:
        raise Unauthorized("No principal: requests must come through the gateway.")
    body, sep, mac = header.partition(".")
    if not sep or not hmac.compare_digest(_mac(key, body), mac):
        raise Unauthorized("The principal header is not signed by the gateway.")
    try:
        principal = Principal.model_validate_json(_unb64(body))
    except (ValueError, ValidationError) as exc:
        raise Unauthorized("The principal header is malformed.") from exc
    if principal.exp + CLOCK_SKEW_SECONDS < time.time():
        raise Unauthorized("The principal header has expired.")
    return principal


async def require_principal(request: Request) -> Principal:
    """Dependency: the verified principal of this request, or 401."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    key: bytes = request.app.state.internal_key
    principal = verify_principal(key, request.headers.get(PRINCIPAL_HEADER))
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(require_principal)]
