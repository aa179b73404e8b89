"""The address guard: webhooks are never delivered to the service's own network.

A URL given by a district manager could otherwise make the service call its own database, a
cloud metadata endpoint or any internal host (server-side request forgery). So every address a
delivery would reach is checked: loopback, private, link-local, carrier-grade NAT, multicast,
unspecified, reserved and cloud metadata addresses are refused, and so are the IPv6 forms that
carry an IPv4 address (IPv4-mapped ``::ffff:``, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``),
judged by the address they carry.

The check runs when an endpoint is saved (resolving its host) and again at every delivery,
against the address the connection is actually made to: the delivery's resolver
(``GuardedResolver``) resolves once, checks, and hands aiohttp only those addresses, so a name
that resolves to a public address at save time and to a private one later (DNS rebinding) is
refused then. aiohttp connects to an IP literal without resolving; ``check_literal`` covers it.

The allow-list (``WEBHOOKS_ALLOW_LIST``) names exceptions, host names or CIDRs: a local
receiver, the scheduler simulator of the embedded run. Only allow-listed hosts may use plain
``http://``.

Everything here is a pure function of its input but the resolver, a seam tests replace.
"""

from __future__ import annotations

import asyncio
import contextvars
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

CLOUD_METADATA = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
CARRIER_GRADE_NAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
SIX_TO_FOUR = ipaddress.ip_network("2002::/16")


class AddressRefused(Exception):
    """The URL would reach an address the guard refuses (or none at all)."""


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries: IPv4-mapped, NAT64 or 6to4; None otherwise."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    return None


def refusal(address: IPAddress) -> str | None:
    """Why a delivery may not go to `address`; None when it may."""
    carried = embedded_ipv4(address)
    if carried is not None:
        reason = refusal(carried)
        return None if reason is None else f"{reason} (carried in {address})"
    if address in CLOUD_METADATA:
        return f"{address} is a cloud metadata address"
    checks = (
        (address.is_loopback, "a loopback"),
        (address.is_unspecified, "the unspecified"),
        (address.is_link_local, "a link-local"),
        (address.is_multicast, "a multicast"),
        (isinstance(address, ipaddress.IPv4Address) and address in CARRIER_GRADE_NAT, "a CGNAT"),
        (address.is_private, "a private"),
        (address.is_reserved, "a reserved"),
        # Anything else not routed on the internet (documentation ranges, benchmarking...).
        (not address.is_global, "not a public"),
    )
    for hit, kind in checks:
        if hit:
            return f"{address} is {kind} address"
    return None


@dataclass(frozen=True)
class AllowList:
    """Exceptions to the guard: host names (exact, case-insensitive) and networks."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        hosts, networks = set(), []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                hosts.add(entry.strip().lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def allows_host(self, host: str) -> bool:
        literal = ip_literal(host)
        if literal is not None:
            return self.allows_address(literal)
        return host.lower().rstrip(".") in self.hosts

    def allows_address(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)


def ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def split_url(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL; refuses anything else."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise AddressRefused("The URL must be http(s) with a host.")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise AddressRefused("The URL's port is not a number from 1 to 65535.") from exc
    if parts.username or parts.password:
        raise AddressRefused("The URL must not carry credentials.")
    return scheme, parts.hostname, port


def check_scheme(url: str, allow: AllowList) -> None:
    """https, unless the host is allow-listed (a local receiver)."""
    scheme, host, _port = split_url(url)
    if scheme != "https" and not allow.allows_host(host):
        raise AddressRefused("The URL must use https (http only for allow-listed hosts).")


def check_addresses(host: str, addresses: Sequence[IPAddress], allow: AllowList) -> None:
    """Every address `host` resolved to must be deliverable: one bad address refuses all."""
    if not addresses:
        raise AddressRefused(f"{host} resolves to no address.")
    if allow.allows_host(host):
        return
    for address in addresses:
        if allow.allows_address(address):
            continue
        reason = refusal(address)
        if reason is not None:
            raise AddressRefused(f"{host} is refused: {reason}.")


class Resolver(Protocol):
    """Resolves a host name to its addresses (the seam tests replace: no real DNS there)."""

    async def resolve(self, host: str, port: int) -> list[IPAddress]: ...


class SystemResolver:
    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except socket.gaierror as exc:
            raise AddressRefused(f"{host} does not resolve: {exc.strerror}.") from exc
        return list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))


@dataclass
class AddressGuard:
    """The allow-list and the resolver the service checks URLs with; one per process."""

    allow: AllowList
    resolver: Resolver = field(default_factory=SystemResolver)

    async def check_url(self, url: str) -> list[IPAddress]:
        """The addresses `url` reaches, all of them deliverable, or AddressRefused."""
        check_scheme(url, self.allow)
        _scheme, host, port = split_url(url)
        literal = ip_literal(host)
        addresses = [literal] if literal is not None else await self.resolver.resolve(host, port)
        check_addresses(host, addresses, self.allow)
        return addresses


# Where the resolver of a delivery writes the addresses it handed aiohttp (a list the sender
# sets per attempt: aiohttp may resolve in a task of its own, which sees the same list).
resolving: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "resolving", default=None
)


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver for deliveries: resolves through the guard, so aiohttp connects only
    to addresses the guard checked at that moment (DNS rebinding is checked per connection)."""

    def __init__(self, guard: AddressGuard) -> None:
        self.guard = guard

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await self.guard.resolver.resolve(host, port)
        check_addresses(host, addresses, self.guard.allow)
        handed = resolving.get()
        if handed is not None:
            handed.extend(str(address) for address in addresses)
        return [
            ResolveResult(
                hostname=host,
                host=str(address),
                port=port,
                family=socket.AF_INET6 if address.version == 6 else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        return None
