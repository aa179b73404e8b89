"""Handle availability: platform rules, the registry's own answer, and the HTTP probe of each
profile URL, against a local HTTP server that plays the platforms (tests never reach the
internet: they ask only for the test platforms they add)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from sqlalchemy import delete

from services.inventory.app import create_app
from services.inventory.availability.rate_limit import CheckLimiter, ChecksRateLimited
from services.inventory.availability.service import PublicOnlyResolver, is_public_address
from services.inventory.models import Platform
from services.inventory.settings import InventorySettings
from tests.conftest import INTERNAL_KEY, Infrastructure, migrated_database
from tests.inventory.factories import HQ_ADMIN, seed_districts
from tests.kit import RunningService, as_user, running_service

pytestmark = pytest.mark.asyncio

PROBE_TIMEOUT = 0.3
CONCURRENCY = 2
FR_VIEWER = as_user("vera", fr="viewer")
DE_VIEWER = as_user("dieter", de="viewer")


@dataclass
class FakePlatforms:
    """A local HTTP server playing the platforms; it records what it was asked and how many
    requests it served at once."""

    port: int = 0
    paths: list[str] = field(default_factory=list)
    user_agents: set[str] = field(default_factory=set)
    in_flight: int = 0
    max_in_flight: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def template(self, route: str) -> str:
        return f"http://127.0.0.1:{self.port}/{route}/{{handle}}"


def platform_app(state: FakePlatforms) -> web.Application:
    @web.middleware
    async def count(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        state.paths.append(request.path)
        state.user_agents.add(request.headers.get("User-Agent", ""))
        state.in_flight += 1
        state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            return await handler(request)
        finally:
            state.in_flight -= 1

    async def taken(request: web.Request) -> web.Response:
        return web.Response(text="a profile")

    async def free(request: web.Request) -> web.Response:
        return web.Response(status=404, text="no such page")

    async def gone(request: web.Request) -> web.Response:
        return web.Response(status=410)

    async def error(request: web.Request) -> web.Response:
        return web.Response(status=500)

    async def slow(request: web.Request) -> web.Response:
        # Far past the probe timeout; released at teardown so the server stops at once.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await state.release.wait()
        return web.Response(text="too late")

    async def hold(request: web.Request) -> web.Response:
        # Long enough for probes to overlap, short enough that three rounds end well inside
        # the check's deadline (2 x PROBE_TIMEOUT) on a loaded machine.
        await asyncio.sleep(0.05)
        return web.Response(text="a profile, slowly")

    async def to_login(request: web.Request) -> web.Response:
        raise web.HTTPFound("/login")

    async def login(request: web.Request) -> web.Response:
        return web.Response(text="log in to see this profile")

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently(f"/moved/{request.match_info['handle']}/")

    async def away(request: web.Request) -> web.Response:
        # The same server under another host name: the probe must not follow.
        raise web.HTTPFound(f"http://localhost:{state.port}/taken/{request.match_info['handle']}")

    app = web.Application(middlewares=[count])
    app.router.add_get("/taken/{handle}", taken)
    app.router.add_get("/free/{handle}", free)
    app.router.add_get("/gone/{handle}", gone)
    app.router.add_get("/error/{handle}", error)
    app.router.add_get("/slow/{handle}", slow)
    app.router.add_get("/hold/{handle}", hold)
    app.router.add_get("/redirect/{handle}", to_login)
    app.router.add_get("/login", login)
    app.router.add_get("/moved/{handle}", moved)
    app.router.add_get("/moved/{handle}/", taken)
    app.router.add_get("/away/{handle}", away)
    return app


@pytest_asyncio.fixture
async def fake_platforms() -> AsyncIterator[FakePlatforms]:
    state = FakePlatforms()
    runner = web.AppRunner(platform_app(state), access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.port = runner.addresses[0][1]
    try:
        yield state
    finally:
        state.release.set()
        await runner.cleanup()


@pytest_asyncio.fixture
async def service(infrastructure: Infrastructure) -> AsyncIterator[RunningService]:
    """The inventory service as tests/kit.py builds it, with a short probe timeout and a
    small concurrency; the districts of tests/inventory/conftest.py."""
    settings = InventorySettings(
        database_url=await migrated_database(infrastructure, "inventory"),
        kafka_bootstrap_servers=infrastructure.bootstrap_servers,
        kafka_enable_idempotence=infrastructure.idempotence,
        internal_key=INTERNAL_KEY,
        process_role="web",
        consumer_group_prefix=f"test-{uuid.uuid4().hex[:8]}.inventory",
        availability_probe_timeout_seconds=PROBE_TIMEOUT,
        availability_probe_concurrency=CONCURRENCY,
        availability_user_agent="Chorus availability test",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            running = RunningService(app, client)
            for body in (
                {"id": "hq", "name": "Headquarters", "kind": "region"},
                {"id": "fr", "name": "France", "kind": "district", "parent_id": "hq"},
                {"id": "de", "name": "Germany", "kind": "district", "parent_id": "hq"},
            ):
                response = await client.post("/districts", json=body, headers=HQ_ADMIN)
                assert response.status_code == 201, response.text
            yield running


async def add_platform(
    service: RunningService,
    key: str,
    template: str,
    pattern: str = r"[A-Za-z0-9_]{1,15}",
) -> None:
    """A platform is a row: insert one whose profile URLs point at the fake server."""
    async with service.sessions() as session, session.begin():
        session.add(
            Platform(
                key=key,
                name=key.title(),
                handle_pattern=pattern,
                profile_url_template=template,
                url_patterns=["^nothing$"],
            )
        )


async def add_routes(service: RunningService, server: FakePlatforms, *routes: str) -> list[str]:
    """One platform per route, keyed t-<route>."""
    keys = []
    for route in routes:
        await add_platform(service, f"t-{route}", server.template(route))
        keys.append(f"t-{route}")
    return keys


async def check(
    service: RunningService,
    handle: str,
    platforms: list[str],
    headers: dict[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    response = await service.client.get(
        "/availability",
        params={"handle": handle, "platform": platforms},
        headers=headers or FR_VIEWER,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["handle"] == handle
    assert [r["platform"] for r in body["results"]] == platforms
    return {r["platform"]: r for r in body["results"]}


async def test_taken_and_free_from_the_profile_status(
    service: RunningService, fake_platforms: FakePlatforms
) -> None:
    await add_routes(service, fake_platforms, "taken", "free", "gone")
    results = await check(service, "orange", ["t-taken", "t-free", "t-gone"])
    assert results["t-taken"] == {
        "platform": "t-taken",
        "handle": "orange",
        "profile_url": f"http://127.0.0.1:{fake_platforms.port}/taken/orange",
        "status": "taken",
        "registered": False,
        "account_id": None,
        "http_status": 200,
        "reason": None,
    }
    assert (results["t-free"]["status"], results["t-free"]["http_status"]) == ("free", 404)
    assert (results["t-gone"]["status"], results["t-gone"]["http_status"]) == ("free", 410)
    assert sorted(fake_platforms.paths) == ["/free/orange", "/gone/orange", "/taken/orange"]
    assert fake_platforms.user_agents == {"Chorus availability test"}


async def test_an_error_is_unknown_with_the_status(
    service: RunningService, fake_platforms: FakePlatforms
) -> None:
    await add_routes(service, fake_platforms, "error")
    result = (await check(service, "orange", ["t-error"]))["t-error"]
    assert (result["status"], result["http_status"]) == ("unknown", 500)
    assert "500" in result["reason"]


async def test_a_redirect_to_a_login_page_is_unknown_and_not_followed(
    service: RunningService, fake_platforms: FakePlatforms
) -> None:
    await add_routes(service, fake_platforms, "redirect")
    result = (await check(service, "orange", ["t-redirect"]))["t-redirect"]
    assert (result["status"], result["http_status"]) == ("unknown", 302)
    assert "/login" in result["reason"]
    assert fake_platforms.paths == ["/redirect/orange"]


async def test_a_redirect_to_another_host_is_not_followed(
    service: RunningService, fake_platforms: FakePlatforms
) -> None:
    await add_routes(service, fake_platforms, "away")
    result = (await check(service, "orange", ["t-away"]))["t-away"]
    assert (result["status"], result["http_status"]) == ("unknown", 302)
    assert fake_platforms.paths == ["/away/orange"]


async def test_a_redirect_that_only_adds_a_slash_is_followed(
    service: RunningService, fake_platforms: FakePlatforms
) -> None:
    await add_routes(service, fake_platforms, "moved")
    result = (await check(service, "orange", ["t-moved"]))["t-moved"]
    assert (result["status"], result["http_status"]) == ("taken", 200)
    assert fake_platforms.paths == ["/moved/orange", "/moved/orange/"]


async def test_a_slow_platform_is_unknown_after_the_timeout(
    service: RunningService, fake_platforms: FakePlatforms
) -> None:
    await add_routes(service, fake_platforms, "slow", "taken")
    started = time.monotonic()
    results = await check(service, "orange", ["t-slow", "t-taken"])
    elapsed = time.monotonic() - started
    assert results["t-slow"]["status"] == "unknown"
    assert results["t-slow"]["http_status"] is None
    assert results["t-slow"]["reason"] == f"No answer within {PROBE_TIMEOUT:g} s."
    # The other platform answered meanwhile; the check waited one timeout, not the server.
    assert results["t-taken"]["status"] == "taken"
    assert elapsed < 3


async def test_the_whole_check_has_a_deadline(
    service: RunningService, fake_platforms: FakePlatforms
) -> None:
    # Five slow platforms, two at a time: rounds end at 0.3, 0.6 and 0.9 s, and the check at
    # two timeouts (0.6 s), so the first round times out and the fifth never gets its turn.
    keys = []
    for n in range(5):
        await add_platform(service, f"t-slow{n}", fake_platforms.template("slow"))
        keys.append(f"t-slow{n}")
    started = time.monotonic()
    results = await check(service, "orange", keys)
    elapsed = time.monotonic() - started
    assert {r["status"] for r in results.values()} == {"unknown"}
    for key in keys[:2]:
        assert results[key]["reason"] == f"No answer within {PROBE_TIMEOUT:g} s."
    assert results[keys[4]]["reason"] == (
        f"No answer within the check's deadline of {2 * PROBE_TIMEOUT:g} s."
    )
    assert elapsed < 3 * PROBE_TIMEOUT + 0.5


async def test_probes_run_concurrently_but_bounded(
    service: RunningService, fake_platforms: FakePlatforms
) -> None:
    keys = []
    for n in range(6):
        await add_platform(service, f"t-hold{n}", fake_platforms.template("hold"))
        keys.append(f"t-hold{n}")
    results = await check(service, "orange", keys)
    assert {r["status"] for r in results.values()} == {"taken"}
    assert len(fake_platforms.paths) == 6
    assert fake_platforms.max_in_flight == CONCURRENCY


async def test_a_handle_that_breaks_a_platforms_rules_is_invalid_there_and_not_probed(
    service: RunningService, fake_platforms: FakePlatforms
) -> None:
    await add_platform(service, "t-short", fake_platforms.template("free"), r"[a-z]{1,5}")
    await add_routes(service, fake_platforms, "taken")
    results = await check(service, "@Orange_FR", ["t-short", "t-taken"])
    assert results["t-short"]["status"] == "invalid"
    assert results["t-short"]["profile_url"] is None
    assert results["t-short"]["handle"] == "@Orange_FR"
    assert "not a valid" in results["t-short"]["reason"]
    # Normalised as the platform shows it: no leading @.
    assert results["t-taken"]["handle"] == "Orange_FR"
    assert results["t-taken"]["status"] == "taken"
    assert fake_platforms.paths == ["/taken/Orange_FR"]


async def test_the_registry_answers_with_the_account_only_where_the_caller_reads(
    service: RunningService, fake_platforms: FakePlatforms
) -> None:
    await add_routes(service, fake_platforms, "free", "taken")
    response = await service.client.post(
        "/accounts",
        json={"platform": "t-free", "handle": "orange", "district_id": "fr"},
        headers=HQ_ADMIN,
    )
    assert response.status_code == 201, response.text
    account_id = response.json()["id"]

    # Case does not matter on this platform: "Orange" is the registered "orange".
    seen = await check(service, "Orange", ["t-free", "t-taken"], FR_VIEWER)
    assert seen["t-free"]["registered"] is True
    assert seen["t-free"]["account_id"] == account_id
    # The registry and the platform are separate answers: the page itself is gone.
    assert seen["t-free"]["status"] == "free"
    assert seen["t-taken"]["registered"] is False

    hidden = await check(service, "Orange", ["t-free"], DE_VIEWER)
    assert hidden["t-free"]["registered"] is True
    assert hidden["t-free"]["account_id"] is None


async def test_every_known_platform_when_none_is_named(
    service: RunningService, fake_platforms: FakePlatforms
) -> None:
    # Only the test platforms may be probed: the shipped ones would go to the internet.
    async with service.sessions() as session, session.begin():
        await session.execute(delete(Platform))
    await add_routes(service, fake_platforms, "taken", "free")
    response = await service.client.get(
        "/availability", params={"handle": "orange"}, headers=FR_VIEWER
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [(r["platform"], r["status"]) for r in results] == [
        ("t-free", "free"),
        ("t-taken", "taken"),
    ]


async def test_a_platform_named_twice_is_checked_once(
    service: RunningService, fake_platforms: FakePlatforms
) -> None:
    await add_routes(service, fake_platforms, "taken")
    response = await service.client.get(
        "/availability",
        params={"handle": "orange", "platform": ["t-taken", "T-Taken"]},
        headers=FR_VIEWER,
    )
    assert response.status_code == 200, response.text
    assert [r["platform"] for r in response.json()["results"]] == ["t-taken"]
    assert fake_platforms.paths == ["/taken/orange"]


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"handle": "orange", "platform": "myspace"}, "unknown-platform"),
        ({"platform": "x"}, "validation-error"),
        ({"handle": "", "platform": "x"}, "validation-error"),
        ({"handle": "o" * 301, "platform": "x"}, "validation-error"),
        ({"handle": "orange", "platform": "not a key!"}, "validation-error"),
        ({"handle": "orange", "platform": ["x"] * 51}, "validation-error"),
    ],
)
async def test_bad_input_is_422_problem(
    service: RunningService, params: dict[str, Any], problem: str
) -> None:
    response = await service.client.get("/availability", params=params, headers=FR_VIEWER)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/" + problem)


async def test_a_caller_without_any_role_cannot_check(
    service: RunningService, fake_platforms: FakePlatforms
) -> None:
    await add_routes(service, fake_platforms, "taken")
    response = await service.client.get(
        "/availability",
        params={"handle": "orange", "platform": "t-taken"},
        headers=as_user("nobody"),
    )
    assert response.status_code == 403
    assert response.json()["type"].endswith("/availability-forbidden")
    assert fake_platforms.paths == []


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "db.internal", "printer.local", "localhost.localdomain", "10.0.0.1"],
)
async def test_a_host_taken_from_the_handle_must_be_a_public_dns_name(
    service: RunningService, fake_platforms: FakePlatforms, host: str
) -> None:
    # A Mastodon-like platform (the host is in the handle) with a loose domain pattern: the
    # probe itself refuses IP literals and non-public names, whatever the pattern admits.
    await add_platform(
        service,
        "t-fediverse",
        f"http://{{domain}}:{fake_platforms.port}/taken/{{user}}",
        r"(?P<user>[a-z]{1,15})@(?P<domain>[a-z0-9.]{1,100})",
    )
    result = (await check(service, f"orange@{host}", ["t-fediverse"]))["t-fediverse"]
    assert result["status"] == "unknown"
    assert result["reason"] == f"Not probed: {host!r} is not a public DNS name."
    assert result["profile_url"] == f"http://{host}:{fake_platforms.port}/taken/orange"
    assert fake_platforms.paths == []


async def test_a_name_from_a_handle_may_not_resolve_to_a_private_address() -> None:
    # A public-looking name pointing at 127.0.0.1 (or rebound to it) cannot be built without
    # the internet's DNS, so the resolver is checked on "localhost" directly.
    refusing = PublicOnlyResolver(frozenset())
    with pytest.raises(OSError, match="no public address"):
        await refusing.resolve("localhost", 80)
    trusting = PublicOnlyResolver(frozenset({"localhost"}))
    assert {r["host"] for r in await trusting.resolve("localhost", 80)} <= {"127.0.0.1", "::1"}
    assert await trusting.resolve("localhost", 80)


# --- IPv6 addresses that lead to IPv4 ones --------------------------------------------------


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
        ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254 (cloud metadata)
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8
        ("64:ff9b:1::7f00:1", False),  # local-use NAT64, /96
        ("64:ff9b:1:7f00:0:100::", False),  # local-use NAT64, /48 embedding of 127.0.0.1
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
        ("2002:c0a8:101::1", False),  # 6to4 of 192.168.1.1
        ("2002:808:808::1", True),  # 6to4 of 8.8.8.8
        ("2001:0:808:808::f5ff:fffe", False),  # Teredo, client 10.0.0.1
        ("2001:0:a00:1::f7f7:f7f7", False),  # Teredo, server 10.0.0.1
        ("2001:0:808:808::f7f7:f7f7", True),  # Teredo, server and client 8.8.8.8
        ("::ffff:7f00:1", False),  # IPv4-mapped 127.0.0.1
        ("::ffff:808:808", True),  # IPv4-mapped 8.8.8.8
        ("::ffff:0:7f00:1", False),  # IPv4-translated 127.0.0.1
        ("::ffff:0:a00:1", False),  # IPv4-translated 10.0.0.1
        ("::7f00:1", False),  # IPv4-compatible 127.0.0.1
        ("::a00:1", False),  # IPv4-compatible 10.0.0.1
        ("::1", False),
        ("::", False),
        ("2001:4860:4860::8888", True),  # plain global IPv6
        ("fd00::1", False),
        ("fe80::1", False),
        ("8.8.8.8", True),
        ("127.0.0.1", False),
    ],
)
async def test_an_address_that_embeds_ipv4_is_judged_by_it(address: str, public: bool) -> None:
    assert is_public_address(address) is public


class FixedResolver(AbstractResolver):
    """Answers every name with the given addresses (what a hostile DNS server would say)."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host=a,
                port=port,
                family=socket.AF_INET6 if ":" in a else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for a in self.addresses
        ]

    async def close(self) -> None:
        pass


async def test_a_name_resolving_to_nat64_or_6to4_of_a_private_address_is_not_probed() -> None:
    for address in ("64:ff9b::7f00:1", "2002:a00:1::1", "::ffff:0:7f00:1", "2001:0:a00:1::"):
        resolver = PublicOnlyResolver(frozenset(), inner=FixedResolver(address))
        with pytest.raises(OSError, match="no public address"):
            await resolver.resolve("mastodon.example.org", 443, socket.AF_INET6)
    mixed = PublicOnlyResolver(
        frozenset(), inner=FixedResolver("64:ff9b::a00:1", "64:ff9b::808:808")
    )
    assert [r["host"] for r in await mixed.resolve("mastodon.example.org", 443)] == [
        "64:ff9b::808:808"
    ]


# --- checks per caller ----------------------------------------------------------------------


async def test_checks_are_limited_per_user_with_retry_after(infrastructure: Infrastructure) -> None:
    async with running_service(
        infrastructure, "inventory", availability_checks_per_minute=2
    ) as limited:
        await seed_districts(limited)
        params = {"handle": "orange", "platform": ["instagram"]}
        for _ in range(2):
            allowed = await limited.client.get("/availability", params=params, headers=FR_VIEWER)
            assert allowed.status_code == 200, allowed.text
        refused = await limited.client.get("/availability", params=params, headers=FR_VIEWER)
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        body = refused.json()
        assert body["type"].endswith("/availability-rate-limited")
        assert body["limit"] == 2
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert body["retry_after"] == int(refused.headers["retry-after"])
        # Another user has a count of their own.
        other = await limited.client.get("/availability", params=params, headers=DE_VIEWER)
        assert other.status_code == 200


async def test_the_window_slides() -> None:
    now = [1000.0]
    limiter = CheckLimiter(2, clock=lambda: now[0])
    limiter.acquire("vera")
    now[0] += 30
    limiter.acquire("vera")
    with pytest.raises(ChecksRateLimited) as refused:
        limiter.acquire("vera")
    assert refused.value.extensions["retry_after"] == 30
    now[0] += 30  # the first check is a minute old
    limiter.acquire("vera")
    with pytest.raises(ChecksRateLimited):
        limiter.acquire("vera")
    limiter.acquire("dieter")
