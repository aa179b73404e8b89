"""One HTTP attempt: POST the signed CloudEvent, read a bounded excerpt of the answer.

The connections go only to addresses the address guard checked at connection time
(``GuardedResolver``; IP literals are checked before, since aiohttp does not resolve them), so
the address connected to is the one checked, whatever DNS answers later. The DNS cache is off
for that reason: a cached answer would skip the check. Redirects are never followed (a 3xx is
a failed attempt: the receiver must give its final URL). The whole attempt, connecting
included, is bounded by the timeout. One client session per process keeps connections alive
between deliveries to the same receiver.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from services.webhooks.address_guard import (
    AddressGuard,
    AddressRefused,
    GuardedResolver,
    check_addresses,
    check_scheme,
    ip_literal,
    resolving,
    split_url,
)
from services.webhooks.vocabulary import AttemptOutcome

USER_AGENT = "Chorus-Webhooks/1"


@dataclass(frozen=True)
class Outcome:
    outcome: AttemptOutcome
    status_code: int | None
    latency_ms: int
    excerpt: str | None
    error: str | None
    retry_after: str | None
    address: str | None


class Sender:
    def __init__(self, guard: AddressGuard, timeout: float, excerpt_bytes: int) -> None:
        self.guard = guard
        self.timeout = timeout
        self.excerpt_bytes = excerpt_bytes
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                resolver=GuardedResolver(self.guard), use_dns_cache=False, limit=0
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                auto_decompress=False,
                trust_env=False,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def send(self, url: str, body: str, headers: dict[str, str]) -> Outcome:
        started = time.monotonic()

        def elapsed() -> int:
            return round((time.monotonic() - started) * 1000)

        try:
            check_scheme(url, self.guard.allow)
            _scheme, host, _port = split_url(url)
            literal = ip_literal(host)
            if literal is not None:
                check_addresses(host, [literal], self.guard.allow)
            resolved: list[str] = []
            resolving.set(resolved)
            async with self._client().post(
                url,
                data=body.encode(),
                headers={
                    **headers,
                    "content-type": "application/json",
                    "user-agent": USER_AGENT,
                },
                allow_redirects=False,
            ) as response:
                address = _peer(response) or (
                    str(literal) if literal is not None else next(iter(resolved), None)
                )
                excerpt = await response.content.read(self.excerpt_bytes)
                code = response.status
                return Outcome(
                    outcome=AttemptOutcome.SUCCEEDED
                    if 200 <= code < 300
                    else AttemptOutcome.FAILED,
                    status_code=code,
                    latency_ms=elapsed(),
                    excerpt=excerpt.decode("utf-8", errors="replace") or None,
                    error=None,
                    retry_after=response.headers.get("retry-after"),
                    address=address,
                )
        except AddressRefused as exc:
            return _error(elapsed(), f"refused: {exc}")
        except TimeoutError:
            return _error(elapsed(), f"timeout after {self.timeout:g} s")
        except aiohttp.ClientError as exc:
            refused = _refusal_in(exc)
            if refused is not None:
                return _error(elapsed(), f"refused: {refused}")
            return _error(elapsed(), f"{type(exc).__name__}: {exc}"[:500])
        except asyncio.CancelledError:
            raise
        except OSError as exc:
            return _error(elapsed(), f"{type(exc).__name__}: {exc}"[:500])


def _error(latency_ms: int, error: str) -> Outcome:
    return Outcome(AttemptOutcome.ERROR, None, latency_ms, None, error, None, None)


def _refusal_in(exc: BaseException) -> AddressRefused | None:
    """The guard's refusal, when aiohttp wrapped the resolver's exception."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, AddressRefused):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _peer(response: aiohttp.ClientResponse) -> str | None:
    """The peer of the response's connection, while aiohttp still holds it (a short body read
    at once releases it: then the address is the one the resolver handed out, or the literal;
    a kept-alive connection was checked when it was made)."""
    connection: Any = response.connection
    transport = None if connection is None else connection.transport
    peer = None if transport is None else transport.get_extra_info("peername")
    return None if not peer else str(peer[0])
