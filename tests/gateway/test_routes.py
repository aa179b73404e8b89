"""What the gateway lets through, judged on the path it forwards, over the wire: the services'
operational routes without a token, their /metrics never, and no path that the service could
read as another one (dot segments, encoded ones too, encoded slashes and backslashes)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from openapi_spec_validator import validate

from chassis.errors import PROBLEM_JSON, TYPE_BASE
from chassis.openapi import OPERATIONAL_PATHS
from chassis.principal import sign_principal
from gateway.app import create_app
from gateway.auth import issue_dev_token
from gateway.settings import GatewaySettings
from tests.gateway.kit import EchoUpstream, raw_exchange, serve

pytestmark = pytest.mark.asyncio

INTERNAL_KEY = "gateway-routes-internal-key-" + uuid.uuid4().hex
JWT_SECRET = "gateway-routes-jwt-secret-" + uuid.uuid4().hex


def bearer() -> dict[str, str]:
    token = issue_dev_token(JWT_SECRET, sub="user-1", grants=["d1:viewer"])
    return {"Authorization": f"Bearer {token}"}


@pytest_asyncio.fixture
async def upstream() -> AsyncIterator[EchoUpstream]:
    echo = EchoUpstream()
    async with serve(echo.app) as url:
        echo.url = url
        yield echo


@pytest_asyncio.fixture
async def gateway(upstream: EchoUpstream) -> AsyncIterator[str]:
    """The gateway under uvicorn, in front of the echo upstream as inventory."""
    settings = GatewaySettings(
        internal_key=INTERNAL_KEY, jwt_secret=JWT_SECRET, inventory_url=upstream.url
    )
    async with serve(create_app(settings)) as url:
        yield url


async def get_raw(
    base_url: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """GET `path` exactly as written on the request line (a client library would normalise
    dot segments away before sending)."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {base_url.removeprefix('http://')}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    lines += ["Connection: close", "", ""]
    return await raw_exchange(base_url, "\r\n".join(lines).encode("latin-1"))


def assert_problem(status: int, headers: dict[str, str], body: bytes, code: int, slug: str) -> None:
    assert status == code, body
    assert headers["content-type"].startswith(PROBLEM_JSON)
    problem = json.loads(body)
    assert problem["type"] == TYPE_BASE + slug
    assert problem["status"] == code


@pytest.mark.parametrize("path", sorted(OPERATIONAL_PATHS))
async def test_operational_routes_pass_without_a_token_and_without_a_principal(
    gateway: str, upstream: EchoUpstream, path: str
) -> None:
    forged = sign_principal(INTERNAL_KEY.encode(), sub="admin", grants={"d1": ["legal"]})
    async with httpx.AsyncClient(base_url=gateway) as client:
        response = await client.get(f"/api/inventory{path}", headers={"X-Chorus-Principal": forged})

    assert response.status_code == 200, response.text
    assert upstream.last.path == path
    assert "x-chorus-principal" not in upstream.last.headers


@pytest.mark.parametrize(
    "path", ["/healthz/x", "/healthzz", "/docs/oauth2-redirect", "/openapi.json/x", "/x/healthz"]
)
async def test_only_the_operational_routes_themselves_pass_without_a_token(
    gateway: str, upstream: EchoUpstream, path: str
) -> None:
    async with httpx.AsyncClient(base_url=gateway) as client:
        refused = await client.get(f"/api/inventory{path}")
        served = await client.get(f"/api/inventory{path}", headers=bearer())

    assert refused.status_code == 401, refused.text
    assert served.status_code == 200, served.text
    assert [r.path for r in upstream.received] == [path]


@pytest.mark.parametrize(
    "path", ["/metrics", "/metrics/", "/metrics/x", "/%6detrics", "/metrics?name=x"]
)
@pytest.mark.parametrize("authorised", [False, True], ids=["no-token", "token"])
async def test_metrics_are_not_forwarded(
    gateway: str, upstream: EchoUpstream, path: str, authorised: bool
) -> None:
    status, headers, body = await get_raw(
        gateway, f"/api/inventory{path}", bearer() if authorised else None
    )

    assert_problem(status, headers, body, 404, "not-found")
    assert upstream.received == []


@pytest.mark.parametrize(
    "path",
    [
        # Judged public by its first segment, it would reach /metrics upstream.
        "/public/%2e%2e/metrics",
        "/public/%2E%2e/metrics",
        "/public/.%2e/metrics",
        "/public/../metrics",
        "/public/%252e%252e/metrics",
        "/public/./feeds/x.ics",
        "/public/%2e/feeds/x.ics",
        "/healthz/%2e%2e/items",
        "/items/..",
        "/public/feeds%2f..%2fx",
        "/public/feeds%2Fx.ics",
        "/public/feeds%5cx.ics",
        "/public/feeds%5Cx.ics",
        "/public/feeds\\x.ics",
        "/public/feeds%255cx.ics",
        "/public//metrics",
        "/%2e%2e/calendar/items",
    ],
)
@pytest.mark.parametrize("authorised", [False, True], ids=["no-token", "token"])
async def test_paths_another_layer_could_read_otherwise_are_refused(
    gateway: str, upstream: EchoUpstream, path: str, authorised: bool
) -> None:
    status, headers, body = await get_raw(
        gateway, f"/api/inventory{path}", bearer() if authorised else None
    )

    assert_problem(status, headers, body, 400, "ambiguous-path")
    assert upstream.received == []


@pytest.mark.parametrize(
    ("path", "forwarded"),
    [
        ("/public/feeds/a.b.ics", "/public/feeds/a.b.ics"),
        ("/public/feeds/...ics", "/public/feeds/...ics"),
        ("/items/x%3Fy%23z", "/items/x%3Fy%23z"),
        ("/items/", "/items/"),
        # The upstream client writes an encoded unreserved character plainly: the same path.
        ("/items/a%2Eb", "/items/a.b"),
    ],
)
async def test_dots_inside_a_segment_and_other_escapes_pass(
    gateway: str, upstream: EchoUpstream, path: str, forwarded: str
) -> None:
    status, _headers, body = await get_raw(gateway, f"/api/inventory{path}", bearer())

    assert status == 200, body
    assert upstream.last.path == forwarded


async def test_the_gateways_own_openapi_document_is_valid(gateway: str) -> None:
    async with httpx.AsyncClient(base_url=gateway) as client:
        response = await client.get("/openapi.json")

    assert response.status_code == 200
    document = response.json()
    validate(document)
    assert {"/healthz", "/readyz"} <= document["paths"].keys()
