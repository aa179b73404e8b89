"""Verifying the caller's JWT and turning its claims into the principal the services trust.

Claims read: ``sub`` (required), ``name`` (optional) and ``grants``, either a mapping of district
id to roles or a list of ``"district:role"`` strings.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import jwt

from chassis.errors import Unauthorized
from gateway.settings import GatewaySettings

MAX_TOKEN_LENGTH = 8192
MAX_GRANTS = 500
JWKS_MIN_REFETCH_SECONDS = 30


class TokenVerifier:
    def __init__(self, settings: GatewaySettings, http: aiohttp.ClientSession | None) -> None:
        self.settings = settings
        self.http = http
        self._jwks: jwt.PyJWKSet | None = None
        self._jwks_fetched_at = 0.0
        self._jwks_lock = asyncio.Lock()

    async def verify(self, authorization: str | None) -> dict[str, Any]:
        if not authorization:
            raise Unauthorized("A bearer token is required.")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("Use the Authorization: Bearer <token> scheme.")
        if len(token) > MAX_TOKEN_LENGTH:
            raise Unauthorized("The token is too long.")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized("The token is malformed.") from exc
        algorithm = header.get("alg")
        options = {"require": ["exp", "sub"]}
        common: dict[str, Any] = {
            "audience": self.settings.jwt_audience,
            "issuer": self.settings.jwt_issuer,
            "leeway": self.settings.jwt_leeway_seconds,
            "options": options,
        }
        if not self.settings.jwt_audience:
            options["verify_aud"] = False  # type: ignore[assignment]
        try:
            if algorithm == "HS256" and self.settings.jwt_secret is not None:
                secret = self.settings.jwt_secret.get_secret_value()
                claims = jwt.decode(token, secret, algorithms=["HS256"], **common)
            elif algorithm == "RS256" and self.settings.jwks_url:
                key = await self._signing_key(header.get("kid"))
                claims = jwt.decode(token, key, algorithms=["RS256"], **common)
            else:
                raise Unauthorized("The token's algorithm is not accepted.")
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("The token has expired.") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("The token is not valid.") from exc
        return claims

    async def _signing_key(self, kid: str | None) -> Any:
        jwks = await self._key_set(refresh=False)
        for attempt in range(2):
            for key in jwks.keys:
                if kid is None or key.key_id == kid:
                    return key.key
            if attempt == 0:
                # An unknown kid may be a rotated key: refetch once.
                jwks = await self._key_set(refresh=True)
        raise Unauthorized("The token's signing key is unknown.")

    async def _key_set(self, *, refresh: bool) -> jwt.PyJWKSet:
        async with self._jwks_lock:
            age = time.monotonic() - self._jwks_fetched_at
            fresh = age < self.settings.jwks_cache_seconds
            # A refetch for an unknown kid is allowed once per interval, so tokens with made-up
            # kids cannot turn the gateway into a load on the identity provider.
            recently = age < JWKS_MIN_REFETCH_SECONDS
            if self._jwks is not None and (recently or (fresh and not refresh)):
                return self._jwks
            assert self.http is not None
            assert self.settings.jwks_url
            try:
                async with self.http.get(
                    self.settings.jwks_url, timeout=aiohttp.ClientTimeout(total=5)
                ) as resp:
                    resp.raise_for_status()
                    self._jwks = jwt.PyJWKSet.from_dict(await resp.json(content_type=None))
                    self._jwks_fetched_at = time.monotonic()
            except (aiohttp.ClientError, TimeoutError, jwt.PyJWTError) as exc:
                if self._jwks is None:
                    raise Unauthorized("The identity provider's keys are unavailable.") from exc
            return self._jwks


def grants_from_claims(claims: dict[str, Any]) -> dict[str, list[str]]:
    raw = claims.get("grants") or {}
    grants: dict[str, set[str]] = {}
    if isinstance(raw, dict):
        for district, roles in raw.items():
            if isinstance(roles, str):
                roles = [roles]
            if isinstance(roles, list):
                grants.setdefault(str(district), set()).update(str(r) for r in roles)
    elif isinstance(raw, list):
        for item in raw:
            district, sep, role = str(item).rpartition(":")
            if sep and district and role:
                grants.setdefault(district, set()).add(role)
    if sum(len(r) for r in grants.values()) > MAX_GRANTS:
        raise Unauthorized("The token carries too many grants.")
    return {district: sorted(roles) for district, roles in grants.items()}


def issue_dev_token(
    secret: str, *, sub: str, grants: list[str], name: str | None = None, ttl: int = 12 * 3600
) -> str:
    """An HS256 token for the embedded run and tests (`chorus token`)."""
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "grants": grants, "iat": now, "exp": now + ttl}
    if name:
        claims["name"] = name
    return jwt.encode(claims, secret, algorithm="HS256")
