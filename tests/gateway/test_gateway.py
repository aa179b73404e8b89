"""The gateway in front of real upstream servers: authentication, the principal it signs,
errors, what passes through in each direction, request ids and trace context."""

from __future__ import annotations

import hashlib
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from starlette.datastructures import Headers

from chassis.errors import PROBLEM_JSON, TYPE_BASE
from chassis.principal import Principal, sign_principal, verify_principal
from gateway.app import create_app
from gateway.auth import issue_dev_token
from gateway.settings import GatewaySettings
from tests.chassis.kit import captured_logs
from tests.gateway.kit import EchoUpstream, closed_port, gateway_client, jwks_app, serve

pytestmark = pytest.mark.asyncio

INTERNAL_KEY = "gateway-test-internal-key-" + uuid.uuid4().hex
JWT_SECRET = "gateway-test-jwt-secret-" + uuid.uuid4().hex
ISSUER = "https://idp.chorus.test"
AUDIENCE = "chorus-api"
TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-01$")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def dev_token(sub: str = "user-1", grants: list[str] | None = None, **kwargs: Any) -> str:
    return issue_dev_token(JWT_SECRET, sub=sub, grants=grants or ["d1:viewer"], **kwargs)


def principal_seen(headers: Headers) -> Principal:
    """The principal the upstream received, verified as a service verifies it."""
    values = headers.getlist("x-chorus-principal")
    assert len(values) == 1, values
    return verify_principal(INTERNAL_KEY.encode(), values[0])


def assert_problem(response: httpx.Response, status: int, type_slug: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = response.json()
    assert body["type"] == TYPE_BASE + type_slug
    assert body["status"] == status


@pytest_asyncio.fixture
async def upstream() -> AsyncIterator[EchoUpstream]:
    echo = EchoUpstream()
    async with serve(echo.app) as url:
        echo.url = url
        yield echo


@pytest.fixture
def settings(upstream: EchoUpstream) -> GatewaySettings:
    return GatewaySettings(
        internal_key=INTERNAL_KEY, jwt_secret=JWT_SECRET, inventory_url=upstream.url
    )


@pytest_asyncio.fixture
async def client(settings: GatewaySettings) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client(settings) as client:
        yield client


# --- HS256 tokens and the principal -------------------------------------------------------


@pytest.mark.parametrize(
    "grants_claim",
    [
        pytest.param(["d1:viewer", "d1:approver", "d2:contributor"], id="list-of-district-role"),
        pytest.param({"d1": ["viewer", "approver"], "d2": ["contributor"]}, id="mapping"),
    ],
)
async def test_valid_token_reaches_upstream_with_signed_principal(
    client: httpx.AsyncClient, upstream: EchoUpstream, grants_claim: Any
) -> None:
    now = int(time.time())
    claims = {"sub": "user-7", "name": "Ana", "grants": grants_claim, "iat": now, "exp": now + 60}
    token = jwt.encode(claims, JWT_SECRET, algorithm="HS256")

    response = await client.get("/api/inventory/items", headers=bearer(token))

    assert response.status_code == 200, response.text
    principal = principal_seen(upstream.last.headers)
    assert principal.sub == "user-7"
    assert principal.name == "Ana"
    assert principal.grants == {"d1": {"viewer", "approver"}, "d2": {"contributor"}}
    assert principal.request_id == response.headers["x-request-id"]


async def test_dev_token_is_accepted(client: httpx.AsyncClient, upstream: EchoUpstream) -> None:
    response = await client.get("/api/inventory/items", headers=bearer(dev_token("user-3")))

    assert response.status_code == 200, response.text
    assert principal_seen(upstream.last.headers).grants == {"d1": {"viewer"}}


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="missing"),
        pytest.param("Bearer not.a.jwt", id="malformed"),
        pytest.param("Bearer ", id="empty-bearer"),
        pytest.param(
            "Bearer " + issue_dev_token("another-secret-" + uuid.uuid4().hex, sub="u", grants=[]),
            id="other-secret",
        ),
        pytest.param("Bearer " + dev_token(ttl=-3600), id="expired"),
        pytest.param("Basic dXNlcjpwYXNzd29yZA==", id="basic-scheme"),
        pytest.param("Token " + dev_token(), id="valid-token-non-bearer-scheme"),
    ],
)
async def test_bad_credentials_are_401_and_never_reach_upstream(
    client: httpx.AsyncClient, upstream: EchoUpstream, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}

    response = await client.get("/api/inventory/items", headers=headers)

    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"
    assert upstream.received == []


async def test_client_principal_header_is_replaced_by_the_gateways(
    client: httpx.AsyncClient, upstream: EchoUpstream
) -> None:
    # Even a header signed with the real key (say, captured from inside) must not get through.
    forged = sign_principal(INTERNAL_KEY.encode(), sub="admin", grants={"d1": ["legal"]})
    headers = {**bearer(dev_token("user-1")), "X-Chorus-Principal": forged}

    response = await client.get("/api/inventory/items", headers=headers)

    assert response.status_code == 200, response.text
    principal = principal_seen(upstream.last.headers)
    assert principal.sub == "user-1"
    assert principal.grants == {"d1": {"viewer"}}


async def test_authorization_header_is_not_forwarded(
    client: httpx.AsyncClient, upstream: EchoUpstream
) -> None:
    response = await client.get("/api/inventory/items", headers=bearer(dev_token()))

    assert response.status_code == 200, response.text
    assert "authorization" not in upstream.last.headers


async def test_public_routes_pass_without_a_token_and_without_a_principal(
    client: httpx.AsyncClient, upstream: EchoUpstream
) -> None:
    # A client-sent principal (even one signed with the real key) is dropped here too.
    forged = sign_principal(INTERNAL_KEY.encode(), sub="admin", grants={"d1": ["legal"]})
    response = await client.get(
        "/api/inventory/public/feeds/tok.ics", headers={"X-Chorus-Principal": forged}
    )

    assert response.status_code == 200, response.text
    assert upstream.last.path == "/public/feeds/tok.ics"
    assert "x-chorus-principal" not in upstream.last.headers
    # Only the /public prefix: a path merely starting with the word still needs a token.
    refused = await client.get("/api/inventory/publicity")
    assert_problem(refused, 401, "unauthorized")


# --- Routing and upstream failures --------------------------------------------------------


async def test_unknown_service_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/nope/x", headers=bearer(dev_token()))

    assert_problem(response, 404, "not-found")


async def test_unreachable_upstream_is_502(settings: GatewaySettings) -> None:
    with closed_port() as dead_url:
        down = settings.model_copy(update={"calendar_url": dead_url})
        async with gateway_client(down) as client:
            response = await client.get("/api/calendar/slots", headers=bearer(dev_token()))

    assert_problem(response, 502, "bad-gateway")


async def test_slow_upstream_is_504(settings: GatewaySettings, upstream: EchoUpstream) -> None:
    impatient = settings.model_copy(update={"upstream_timeout_seconds": 0.3})
    async with gateway_client(impatient) as client:
        started = time.monotonic()
        response = await client.get("/api/inventory/slow", headers=bearer(dev_token()))
        elapsed = time.monotonic() - started

    assert_problem(response, 504, "upstream-timeout")
    assert len(upstream.received) == 1
    assert elapsed < 1.5, "the gateway waited for the upstream instead of timing out"


# --- What passes through ------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
async def test_method_path_query_and_body_pass_through(
    client: httpx.AsyncClient, upstream: EchoUpstream, method: str
) -> None:
    body = b'{"title": "Spring sale"}'

    response = await client.request(
        method,
        "/api/inventory/districts/d1/posts",
        params=[("tag", "a"), ("tag", "b"), ("q", "x y&z")],
        content=body,
        headers={**bearer(dev_token()), "Content-Type": "application/json"},
    )

    assert response.status_code == 200, response.text
    assert response.content == body
    seen = upstream.last
    assert seen.method == method
    assert seen.path == "/districts/d1/posts"
    assert seen.query == [("tag", "a"), ("tag", "b"), ("q", "x y&z")]
    assert seen.body == body
    assert seen.headers["content-type"] == "application/json"


async def test_percent_encoded_path_arrives_as_sent(
    client: httpx.AsyncClient, upstream: EchoUpstream
) -> None:
    # An encoded slash is refused instead (tests/gateway/test_routes.py): the upstream could
    # read it as a separator, so the gateway would not judge the path it forwards.
    response = await client.get(
        "/api/inventory/files/a%3Fc%23d%20e%25?x=1", headers=bearer(dev_token())
    )

    assert response.status_code == 200, response.text
    assert upstream.last.path == "/files/a%3Fc%23d%20e%25"
    assert upstream.last.query == [("x", "1")]


async def _chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_large_body_round_trips_byte_identical(
    client: httpx.AsyncClient, upstream: EchoUpstream, framing: str
) -> None:
    payload = os.urandom(5 * 1024 * 1024)
    content = payload if framing == "content-length" else _chunks(payload)

    response = await client.post(
        "/api/inventory/upload",
        content=content,
        headers={**bearer(dev_token()), "Content-Type": "application/octet-stream"},
    )

    assert response.status_code == 200
    assert upstream.last.body == payload
    assert response.content == payload
    if framing == "content-length":
        # Kept, so a service can refuse an oversized body before reading it.
        assert upstream.last.headers["content-length"] == str(len(payload))


async def test_upstream_status_and_headers_pass_through(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/inventory/created", headers=bearer(dev_token()))

    assert response.status_code == 201
    assert response.json() == {"id": "42"}
    assert response.headers["location"] == "/items/42"
    assert response.headers["x-chorus-custom"] == "yes"
    assert response.headers["content-type"] == "application/json"


async def test_repeated_upstream_headers_all_pass_through(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/inventory/created", headers=bearer(dev_token()))

    assert response.status_code == 201
    cookies = response.headers.get_list("set-cookie")
    assert [c.split(";")[0] for c in cookies] == ["a=1", "b=2"]


async def test_latin1_upstream_header_passes_through(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/inventory/created", headers=bearer(dev_token()))

    assert response.status_code == 201
    assert response.headers["content-disposition"] == 'attachment; filename="café.txt"'


async def test_repeated_client_headers_all_pass_through(
    client: httpx.AsyncClient, upstream: EchoUpstream
) -> None:
    headers = [
        ("Authorization", f"Bearer {dev_token()}"),
        ("Accept-Language", "fr"),
        ("Accept-Language", "de"),
    ]

    response = await client.get("/api/inventory/items", headers=headers)

    assert response.status_code == 200, response.text
    assert upstream.last.headers.getlist("accept-language") == ["fr", "de"]


async def test_no_duplicated_date_server_or_request_id_headers(settings: GatewaySettings) -> None:
    # Under uvicorn, as in production: its own `date` and `server` must not be doubled by the
    # upstream's (also uvicorn) copies.
    async with (
        serve(create_app(settings)) as gateway_url,
        httpx.AsyncClient(base_url=gateway_url) as client,
    ):
        response = await client.post("/api/inventory/created", headers=bearer(dev_token()))

    assert response.status_code == 201, response.text
    for name in ("date", "server", "x-request-id", "content-type"):
        assert len(response.headers.get_list(name)) == 1, (name, response.headers)


# --- Request id and trace context ---------------------------------------------------------


async def test_client_request_id_is_forwarded_and_returned(
    client: httpx.AsyncClient, upstream: EchoUpstream
) -> None:
    headers = {**bearer(dev_token()), "X-Request-ID": "client-req-123"}

    response = await client.get("/api/inventory/items", headers=headers)

    assert response.status_code == 200, response.text
    assert response.headers.get_list("x-request-id") == ["client-req-123"]
    assert upstream.last.headers.getlist("x-request-id") == ["client-req-123"]
    assert principal_seen(upstream.last.headers).request_id == "client-req-123"


async def test_request_id_is_made_when_missing(
    client: httpx.AsyncClient, upstream: EchoUpstream
) -> None:
    response = await client.get("/api/inventory/items", headers=bearer(dev_token()))

    assert response.status_code == 200, response.text
    made = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert upstream.last.headers.getlist("x-request-id") == [made]


async def test_unsafe_client_request_id_is_replaced(
    client: httpx.AsyncClient, upstream: EchoUpstream
) -> None:
    headers = {**bearer(dev_token()), "X-Request-ID": "x" * 500}

    response = await client.get("/api/inventory/items", headers=headers)

    assert response.status_code == 200, response.text
    made = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert upstream.last.headers.getlist("x-request-id") == [made]


async def test_traceparent_is_made_when_missing(
    client: httpx.AsyncClient, upstream: EchoUpstream
) -> None:
    response = await client.get("/api/inventory/items", headers=bearer(dev_token()))

    assert response.status_code == 200, response.text
    assert TRACEPARENT.fullmatch(upstream.last.headers["traceparent"])


async def test_client_traceparent_is_passed_through(
    client: httpx.AsyncClient, upstream: EchoUpstream
) -> None:
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    headers = {**bearer(dev_token()), "traceparent": traceparent}

    response = await client.get("/api/inventory/items", headers=headers)

    assert response.status_code == 200, response.text
    assert upstream.last.headers.getlist("traceparent") == [traceparent]


# --- RS256 tokens with keys from a JWKS endpoint ------------------------------------------


@pytest.fixture(scope="module")
def idp_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest_asyncio.fixture
async def rs256_client(
    idp_key: rsa.RSAPrivateKey, upstream: EchoUpstream
) -> AsyncIterator[httpx.AsyncClient]:
    jwk = RSAAlgorithm.to_jwk(idp_key.public_key(), as_dict=True)
    jwks = {"keys": [{**jwk, "kid": "k1", "alg": "RS256", "use": "sig"}]}
    async with serve(jwks_app(jwks)) as idp_url:
        settings = GatewaySettings(
            internal_key=INTERNAL_KEY,
            jwks_url=f"{idp_url}/jwks.json",
            jwt_issuer=ISSUER,
            jwt_audience=AUDIENCE,
            inventory_url=upstream.url,
        )
        async with gateway_client(settings) as client:
            yield client


def rs256_token(
    key: rsa.RSAPrivateKey, *, kid: str = "k1", aud: str = AUDIENCE, iss: str = ISSUER
) -> str:
    now = int(time.time())
    claims = {
        "sub": "idp-user",
        "grants": ["d9:analyst"],
        "iss": iss,
        "aud": aud,
        "iat": now,
        "exp": now + 300,
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


async def test_rs256_token_from_jwks_is_accepted(
    rs256_client: httpx.AsyncClient, upstream: EchoUpstream, idp_key: rsa.RSAPrivateKey
) -> None:
    response = await rs256_client.get("/api/inventory/items", headers=bearer(rs256_token(idp_key)))

    assert response.status_code == 200, response.text
    principal = principal_seen(upstream.last.headers)
    assert principal.sub == "idp-user"
    assert principal.grants == {"d9": {"analyst"}}


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda key, other: rs256_token(key, aud="someone-else"), id="wrong-audience"),
        pytest.param(lambda key, other: rs256_token(key, iss="https://evil.test"), id="wrong-iss"),
        pytest.param(lambda key, other: rs256_token(key, kid="k-unknown"), id="unknown-kid"),
        pytest.param(lambda key, other: rs256_token(other), id="signed-by-another-key"),
        pytest.param(lambda key, other: dev_token(), id="hs256-when-only-jwks-is-trusted"),
    ],
)
async def test_rs256_bad_tokens_are_401(
    rs256_client: httpx.AsyncClient,
    upstream: EchoUpstream,
    idp_key: rsa.RSAPrivateKey,
    other_key: rsa.RSAPrivateKey,
    make_token: Callable[[rsa.RSAPrivateKey, rsa.RSAPrivateKey], str],
) -> None:
    response = await rs256_client.get(
        "/api/inventory/items", headers=bearer(make_token(idp_key, other_key))
    )

    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"
    assert upstream.received == []


async def test_unknown_kids_do_not_make_the_gateway_hammer_the_identity_provider(
    idp_key: rsa.RSAPrivateKey, upstream: EchoUpstream
) -> None:
    jwk = RSAAlgorithm.to_jwk(idp_key.public_key(), as_dict=True)
    fetches: list[float] = []
    jwks = {"keys": [{**jwk, "kid": "k1", "alg": "RS256", "use": "sig"}]}
    async with serve(jwks_app(jwks, fetches)) as idp_url:
        settings = GatewaySettings(
            internal_key=INTERNAL_KEY,
            jwks_url=f"{idp_url}/jwks.json",
            jwt_issuer=ISSUER,
            jwt_audience=AUDIENCE,
            inventory_url=upstream.url,
        )
        async with gateway_client(settings) as client:
            for i in range(10):
                token = rs256_token(idp_key, kid=f"made-up-{i}")
                response = await client.get("/api/inventory/items", headers=bearer(token))
                assert_problem(response, 401, "unauthorized")
            valid = await client.get("/api/inventory/items", headers=bearer(rs256_token(idp_key)))
    assert valid.status_code == 200
    assert len(fetches) == 1


# --- Refusals and logs at the edge --------------------------------------------------------


@pytest.mark.parametrize("name", ["content-type", "content-length"])
async def test_a_repeated_framing_header_is_refused_and_not_forwarded(
    client: httpx.AsyncClient, upstream: EchoUpstream, name: str
) -> None:
    body = b'{"name": "a"}'
    values = {"content-type": ["application/json", "text/plain"], "content-length": ["13", "13"]}
    headers = [("Authorization", f"Bearer {dev_token()}")]
    if name == "content-length":
        headers.append(("content-type", "application/json"))
    headers += [(name, value) for value in values[name]]

    response = await client.post("/api/inventory/items", content=body, headers=headers)

    assert_problem(response, 400, "repeated-header")
    assert upstream.received == []


async def test_a_repeated_content_type_is_refused_over_the_wire(
    settings: GatewaySettings, upstream: EchoUpstream
) -> None:
    async with (
        serve(create_app(settings)) as gateway_url,
        httpx.AsyncClient(base_url=gateway_url) as client,
    ):
        headers = [
            ("Authorization", f"Bearer {dev_token()}"),
            ("content-type", "application/json"),
            ("content-type", "text/plain"),
        ]
        response = await client.post("/api/inventory/items", content=b"{}", headers=headers)

    assert_problem(response, 400, "repeated-header")
    assert upstream.received == []


async def test_public_tokens_are_redacted_in_the_gateways_logs(settings: GatewaySettings) -> None:
    token = "feed-" + uuid.uuid4().hex
    fingerprint = "~" + hashlib.sha256(f"{token}.ics".encode()).hexdigest()[:8]
    with closed_port() as dead_url:
        down = settings.model_copy(update={"calendar_url": dead_url})
        async with gateway_client(down) as client:
            with captured_logs("chorus.access", "gateway") as records:
                response = await client.get(f"/api/calendar/public/feeds/{token}.ics")

    assert_problem(response, 502, "bad-gateway")
    lines = {r.name: r.getMessage() for r in records}
    assert set(lines) == {"chorus.access", "gateway"}, lines
    assert all(token not in line for line in lines.values()), lines
    assert lines["chorus.access"].startswith(f"GET /api/calendar/public/feeds/{fingerprint} 502")
    assert f"/public/feeds/{fingerprint} unreachable" in lines["gateway"]
