"""Handle availability, as KnowEm does: for a wanted handle, on each platform, does the
handle fit the platform's rules, is it already in the inventory, and does its profile page
exist (an HTTP probe of the registry's profile URL)?

The probe only fetches URLs built from the registry's templates (no SSRF): the handle has
passed the platform's handle pattern, the built URL must keep the template's host, and a
platform whose host comes from the handle (Mastodon: ``user@server``) is probed only on a
public DNS name that resolves to public addresses. Redirects are followed only when they stay
on the same profile (a trailing slash, http to https); a redirect elsewhere (a login or consent
wall) says nothing about the handle, so it is "unknown". Bodies are never read: the status line
is the answer.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from yarl import URL

from chassis.districts import Scope
from chassis.errors import Forbidden
from chassis.principal import Principal
from services.inventory.access import tree
from services.inventory.availability import repository
from services.inventory.availability.schemas import (
    Availability,
    AvailabilityStatus,
    PlatformAvailability,
)
from services.inventory.platforms import InvalidHandle, PlatformRules, Registry, load_registry
from services.inventory.rows import from_row
from services.inventory.settings import InventorySettings

TAKEN = frozenset({200})
FREE = frozenset({404, 410})
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 3
# The whole check ends after this many probe timeouts: with the default concurrency every
# platform of the registry fits in two rounds; what has not answered by then is "unknown".
DEADLINE_ROUNDS = 2
MAX_REASON_LENGTH = 300

_DNS_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_TLD = re.compile(r"^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")
# Special-use and private-use names (RFC 6761, 6762, 7686, 8375, 9476 and common intranet
# suffixes): never a public Mastodon server, often an internal one.
_NON_PUBLIC_SUFFIXES = frozenset(
    {
        "alt",
        "arpa",
        "corp",
        "example",
        "home",
        "internal",
        "intranet",
        "invalid",
        "lan",
        "local",
        "localdomain",
        "localhost",
        "onion",
        "private",
        "test",
    }
)


class AvailabilityForbidden(Forbidden):
    type_slug = "availability-forbidden"
    title = "Checking handles needs a role"


@dataclass(frozen=True)
class ProbeSettings:
    timeout: float
    concurrency: int
    user_agent: str

    @classmethod
    def of(cls, settings: InventorySettings) -> ProbeSettings:
        return cls(
            timeout=settings.availability_probe_timeout_seconds,
            concurrency=settings.availability_probe_concurrency,
            user_agent=settings.availability_user_agent,
        )

    @property
    def deadline(self) -> float:
        return self.timeout * DEADLINE_ROUNDS


@dataclass(frozen=True)
class Candidate:
    """One platform's answer before the probe: the rules, the registry, the URL to probe."""

    platform: str
    handle: str
    profile_url: str | None
    registered: bool = False
    account_id: uuid.UUID | None = None
    # Why the handle is invalid there, or why its URL must not be fetched.
    invalid: str | None = None
    refused: str | None = None
    # The host comes from the handle (Mastodon), not from the registry's template.
    host_from_handle: bool = False

    @property
    def probed(self) -> bool:
        return self.profile_url is not None and self.invalid is None and self.refused is None

    def answer(
        self,
        status: AvailabilityStatus,
        http_status: int | None = None,
        reason: str | None = None,
    ) -> PlatformAvailability:
        return from_row(
            PlatformAvailability,
            self,
            status=status,
            http_status=http_status,
            reason=reason[:MAX_REASON_LENGTH] if reason else None,
        )


@dataclass(frozen=True)
class Outcome:
    status: AvailabilityStatus
    http_status: int | None = None
    reason: str | None = None


class AvailabilityService:
    async def check(
        self,
        factory: async_sessionmaker[AsyncSession],
        principal: Principal,
        handle: str,
        platform_keys: Sequence[str],
        settings: InventorySettings,
    ) -> Availability:
        """Is `handle` to be had on each platform? The database work is done, and its
        connection back in the pool, before the probes, which take seconds: this opens its own
        short read-only session instead of holding the request's (it writes nothing)."""
        async with factory() as session:
            scope = await tree.scope_of(session, principal)
            registry = await load_registry(session)
            candidates = await self.candidates(session, scope, registry, handle, platform_keys)
        results = await self.probe(candidates, ProbeSettings.of(settings))
        return Availability(handle=handle, results=results)

    async def candidates(
        self,
        session: AsyncSession,
        scope: Scope,
        registry: Registry,
        handle: str,
        platform_keys: Sequence[str],
    ) -> list[Candidate]:
        """What the registry says of `handle` on these platforms (all known ones if none)."""
        if not scope.read_paths:
            # Reading the inventory needs a role; the probes are outbound requests made on the
            # caller's behalf, which a caller without any role has no business making.
            raise AvailabilityForbidden("Checking a handle needs a role on a district.")
        if platform_keys:
            chosen = list({rules.key: rules for rules in map(registry.get, platform_keys)}.values())
        else:
            chosen = sorted(registry.platforms.values(), key=lambda r: r.key)
        found: list[Candidate] = []
        keys: dict[str, str] = {}
        for rules in chosen:
            try:
                shown, handle_key = rules.normalise(handle)
            except InvalidHandle as exc:
                found.append(Candidate(rules.key, handle, None, invalid=exc.detail))
                continue
            keys[rules.key] = handle_key
            url = rules.profile_url(shown)
            from_handle = host_from_handle(rules)
            found.append(
                Candidate(
                    rules.key,
                    shown,
                    url,
                    refused=refusal(rules, url),
                    host_from_handle=from_handle,
                )
            )
        registered = await repository.find_registered(session, keys)
        return [
            _with_registry(c, registered.get(c.platform), scope) if c.platform in keys else c
            for c in found
        ]

    async def probe(
        self, candidates: Sequence[Candidate], settings: ProbeSettings
    ) -> list[PlatformAvailability]:
        """Each candidate's final answer: its profile URL probed over HTTP, at most
        `settings.concurrency` at a time, each within `settings.timeout`, all within
        `settings.deadline`."""
        to_probe = [c for c in candidates if c.probed]
        outcomes: dict[str, Outcome] = {}
        if to_probe:
            outcomes = await _probe_all(to_probe, settings)
        results = []
        for candidate in candidates:
            if candidate.invalid is not None:
                results.append(candidate.answer("invalid", reason=candidate.invalid))
            elif candidate.refused is not None:
                results.append(candidate.answer("unknown", reason=candidate.refused))
            else:
                outcome = outcomes[candidate.platform]
                results.append(
                    candidate.answer(outcome.status, outcome.http_status, outcome.reason)
                )
        return results


availability = AvailabilityService()


def _with_registry(
    candidate: Candidate, found: tuple[uuid.UUID, str] | None, scope: Scope
) -> Candidate:
    if found is None:
        return candidate
    account_id, path = found
    # Another district's account exists (the handle is not to be had) but stays unnamed.
    return replace(
        candidate, registered=True, account_id=account_id if scope.can_read(path) else None
    )


# --- what may be fetched -------------------------------------------------------------------


def host_from_handle(rules: PlatformRules) -> bool:
    """True when the template takes its host from the handle (Mastodon's "https://{domain}/@
    {user}"), so the registry does not vouch for the host."""
    return "{" in urlsplit(rules.profile_url_template).netloc


def refusal(rules: PlatformRules, url: str) -> str | None:
    """Why `url` must not be fetched, or None when it may be. The URL is parsed by yarl, the
    parser aiohttp fetches with, so the host checked is the host connected to."""
    try:
        target = URL(url)
        host = (target.host or "").lower()
        port = target.port
    except ValueError:
        return "Not probed: the profile URL is not a valid URL."
    if target.scheme not in ("http", "https") or not host:
        return "Not probed: the profile URL is not an http(s) URL."
    if target.user is not None or target.password is not None:
        return "Not probed: the profile URL carries credentials."
    if not host_from_handle(rules):
        try:
            template = URL(rules.profile_url_template)
            same = (host, port) == ((template.host or "").lower(), template.port)
        except ValueError:
            same = False
        if not same:
            return "Not probed: the profile URL leaves the platform's host."
        return None
    # The host is part of the handle (Mastodon): the handle pattern admits only DNS names, but
    # a handle is user input, so probe only a syntactically valid public DNS name, never an IP
    # literal nor a special-use or intranet name; the resolver then refuses a name that
    # resolves to private addresses (see PublicOnlyResolver).
    if not is_public_dns_name(host):
        return f"Not probed: {host!r} is not a public DNS name."
    return None


def is_public_dns_name(host: str) -> bool:
    host = host.lower().rstrip(".")
    if len(host) > 253:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return False
    labels = host.split(".")
    if len(labels) < 2 or not all(_DNS_LABEL.fullmatch(label) for label in labels):
        return False
    return bool(_TLD.fullmatch(labels[-1])) and labels[-1] not in _NON_PUBLIC_SUFFIXES


# IPv6 ranges whose addresses carry an IPv4 address that the traffic ends up at (through a
# translator, a tunnel or the host's own stack): such an address is as public as that IPv4
# address, whatever the IPv6 range's own registration says.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052 well-known prefix
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215 local-use prefix
# Where RFC 6052 puts the IPv4 address under a prefix of each length that fits in /48 (after
# dropping the reserved "u" octet, bits 64-71); /96 puts it in the last 32 bits.
_NAT64_LOCAL_PREFIX_LENGTHS = (48, 56, 64)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address] | None:
    """The IPv4 addresses an IPv6 address leads to, or None when it embeds none: IPv4-mapped
    (::ffff:a.b.c.d), IPv4-translated (::ffff:0:a.b.c.d), IPv4-compatible (::a.b.c.d, which
    covers :: and ::1 too), NAT64 (64:ff9b::/96; under the local-use 64:ff9b:1::/48 the
    prefix length is the operator's choice, so every place RFC 6052 allows), 6to4
    (2002::/16) and Teredo (2001::/32: its server and its client)."""
    value = int(ip)
    high = value >> 32
    low = ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if high in (0, 0xFFFF, 0xFFFF0000):
        return [low]
    if ip in _NAT64:
        return [low]
    if ip in _NAT64_LOCAL:
        packed = ip.packed
        without_u = packed[:8] + packed[9:]
        found = [
            ipaddress.IPv4Address(without_u[n // 8 : n // 8 + 4])
            for n in _NAT64_LOCAL_PREFIX_LENGTHS
        ]
        return [*found, low]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        return list(ip.teredo)
    return None


def is_public_address(address: str) -> bool:
    """A global unicast address; an IPv6 address that embeds IPv4 ones is judged by those
    (64:ff9b::7f00:1 is 127.0.0.1 through a NAT64 gateway, not a public address)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = embedded_ipv4(ip)
        if embedded is not None:
            return all(_is_public(v4) for v4 in embedded)
    return _is_public(ip)


def _is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return ip.is_global and not ip.is_multicast


class PublicOnlyResolver(AbstractResolver):
    """Resolves as usual, but a host the registry does not vouch for (one taken from a
    handle) may only connect to public addresses: a public name pointing at 10.0.0.1 or
    127.0.0.1 (or rebound to it) is not probed. The check is on the very addresses the
    connector then uses. IP literals never reach a resolver: refusal() refuses them first."""

    def __init__(
        self, trusted_hosts: frozenset[str], inner: AbstractResolver | None = None
    ) -> None:
        self._inner = inner or DefaultResolver()
        self._trusted = trusted_hosts

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        if host.lower().rstrip(".") in self._trusted:
            return found
        public = [r for r in found if is_public_address(r["host"])]
        if not public:
            raise OSError(f"{host} resolves to no public address")
        return public

    async def close(self) -> None:
        await self._inner.close()


# --- the probe -----------------------------------------------------------------------------


async def _probe_all(
    candidates: Sequence[Candidate], settings: ProbeSettings
) -> dict[str, Outcome]:
    trusted = frozenset(
        (URL(c.profile_url).raw_host or "").lower()
        for c in candidates
        if c.profile_url is not None and not c.host_from_handle
    )
    resolver = PublicOnlyResolver(trusted)
    semaphore = asyncio.Semaphore(settings.concurrency)
    outcomes: dict[str, Outcome] = {}
    try:
        # One session per check: no cookie shared between platforms (nor kept), no proxy from
        # the environment, connections closed after each answer since nothing is reused.
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=settings.concurrency, resolver=resolver, force_close=True
            ),
            cookie_jar=aiohttp.DummyCookieJar(),
            headers={"User-Agent": settings.user_agent, "Accept": "text/html,*/*;q=0.8"},
            timeout=aiohttp.ClientTimeout(total=settings.timeout),
            trust_env=False,
        ) as client:
            tasks = {
                c.platform: asyncio.create_task(_probe_bounded(client, semaphore, c, settings))
                for c in candidates
            }
            try:
                await asyncio.wait(tasks.values(), timeout=settings.deadline)
            finally:
                # Past the deadline, or the caller went away: no probe outlives the check.
                late = [t for t in tasks.values() if not t.done()]
                for task in late:
                    task.cancel()
                await asyncio.gather(*late, return_exceptions=True)
            for platform, task in tasks.items():
                if task.cancelled():
                    outcomes[platform] = Outcome(
                        "unknown",
                        reason=f"No answer within the check's deadline of {settings.deadline:g} s.",
                    )
                else:
                    # An exception here is a bug of the probe: let it be the 500 it is.
                    outcomes[platform] = task.result()
    finally:
        await resolver.close()
    return outcomes


async def _probe_bounded(
    client: aiohttp.ClientSession,
    semaphore: asyncio.Semaphore,
    candidate: Candidate,
    settings: ProbeSettings,
) -> Outcome:
    assert candidate.profile_url is not None
    async with semaphore:
        try:
            async with asyncio.timeout(settings.timeout):
                return await _probe(client, URL(candidate.profile_url))
        except TimeoutError:
            return Outcome("unknown", reason=f"No answer within {settings.timeout:g} s.")
        except (aiohttp.ClientError, OSError) as exc:
            # The class, not the message: it may carry addresses the caller need not see.
            return Outcome("unknown", reason=f"Connection failed ({type(exc).__name__}).")


async def _probe(client: aiohttp.ClientSession, url: URL) -> Outcome:
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        # The status line is the answer; the body is never read (leaving the block drops the
        # connection with whatever the server had started to send).
        async with client.get(current, allow_redirects=False) as response:
            code = response.status
            location = response.headers.get("Location")
        if code in TAKEN:
            return Outcome("taken", code)
        if code in FREE:
            return Outcome("free", code)
        if code not in REDIRECTS or not location:
            return Outcome("unknown", code, f"The profile URL answered HTTP {code}.")
        try:
            target = current.join(URL(location))
        except ValueError:
            return Outcome("unknown", code, "The profile URL redirected to an invalid URL.")
        if not _same_profile(current, target):
            return Outcome(
                "unknown",
                code,
                f"The profile URL redirected elsewhere (a login or consent page?): {target}",
            )
        current = target
    return Outcome("unknown", code, f"More than {MAX_REDIRECTS} redirects.")


def _same_profile(current: URL, target: URL) -> bool:
    """A redirect that only canonicalises the profile URL: same host, same path but for case
    and a trailing slash, same scheme or an upgrade to https on the default port."""
    if (target.host or "").lower() != (current.host or "").lower():
        return False
    same_origin = target.scheme == current.scheme and target.port == current.port
    upgrade = (current.scheme, current.port, target.scheme, target.port) == (
        "http",
        80,
        "https",
        443,
    )
    if not (same_origin or upgrade):
        return False
    return target.path.rstrip("/").lower() == current.path.rstrip("/").lower()
