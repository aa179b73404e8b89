"""Every service is built on the same frame: these tests run against all five, each on its own
migrated database and the real broker."""

from __future__ import annotations

import json
import logging
import re
import socket
import time
from collections.abc import AsyncIterator
from importlib import import_module
from urllib.parse import urljoin

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from openapi_spec_validator import validate

from chassis.app import PUBLIC_PATHS, route_table
from chassis.openapi import OPERATIONAL_PATHS
from chassis.principal import PRINCIPAL_HEADER, PUBLIC_PREFIX, sign_principal
from tests.asyncapi import specification_errors
from tests.chassis.kit import eventually
from tests.conftest import INTERNAL_KEY, Infrastructure, migrated_database
from tests.kit import build_app

log = logging.getLogger(__name__)

pytestmark = pytest.mark.asyncio

SERVICES = ["inventory", "calendar", "approvals", "metrics", "webhooks"]


@pytest_asyncio.fixture(params=SERVICES)
async def service(
    request: pytest.FixtureRequest, infrastructure: Infrastructure
) -> AsyncIterator[tuple[str, FastAPI, httpx.AsyncClient]]:
    name: str = request.param
    database_url = await migrated_database(infrastructure, name)
    app = build_app(name, database_url, infrastructure)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            yield name, app, client


def principal_header(**grants: list[str]) -> dict[str, str]:
    return {PRINCIPAL_HEADER: sign_principal(INTERNAL_KEY.encode(), sub="u1", grants=grants)}


def concrete_path(path: str) -> str:
    """A route template with every parameter filled with a plausible value."""
    return re.sub(r"\{[^}]+\}", "00000000-0000-0000-0000-000000000000", path)


async def test_health_readiness_and_metrics_are_served(
    service: tuple[str, FastAPI, httpx.AsyncClient],
) -> None:
    name, _app, client = service
    health = await client.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "service": name}

    async def ready() -> bool:
        # The consumers join their groups in the background; readiness waits for them.
        return (await client.get("/readyz")).status_code == 200

    started = time.monotonic()
    await eventually(ready, within=30)
    log.info("%s ready %.1f s after start", name, time.monotonic() - started)
    ready_answer = await client.get("/readyz")
    assert ready_answer.json()["checks"] == {"database": "ok", "broker": "ok", "background": "ok"}
    await client.get("/me", headers=principal_header())
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert (
        f'chorus_http_requests_total{{method="GET",route="/me",service="{name}",status="200"}}'
        in metrics.text
    )


async def test_every_route_refuses_a_request_without_a_valid_principal(
    service: tuple[str, FastAPI, httpx.AsyncClient],
) -> None:
    _name, app, client = service
    protected = [
        (p, m)
        for p, m in route_table(app)
        if p not in PUBLIC_PATHS and not p.startswith(PUBLIC_PREFIX + "/")
    ]
    assert ("/me", frozenset({"GET"})) in protected
    forged = sign_principal(b"not-the-gateway-key-0000", sub="mallory", grants={"hq": ["viewer"]})
    expired = sign_principal(INTERNAL_KEY.encode(), sub="u1", grants={}, ttl=-60)
    for template, methods in protected:
        path = concrete_path(template)
        for method in sorted(methods):
            for headers in (
                {},
                {PRINCIPAL_HEADER: forged},
                {PRINCIPAL_HEADER: expired},
                {PRINCIPAL_HEADER: "garbage"},
            ):
                response = await client.request(method, path, headers=headers)
                assert response.status_code == 401, (method, path, headers, response.text)
                assert response.headers["content-type"] == "application/problem+json"
                assert response.json()["type"].endswith("/unauthorized")


async def test_public_routes_are_only_the_operational_ones(
    service: tuple[str, FastAPI, httpx.AsyncClient],
) -> None:
    _name, app, client = service
    served = {path for path, _methods in route_table(app)}
    assert served >= PUBLIC_PATHS
    for path in served - PUBLIC_PATHS:
        response = await client.get(concrete_path(path))
        if path.startswith(PUBLIC_PREFIX + "/"):
            # Authenticated by the route itself (a token in the path): a made-up one is refused.
            assert response.status_code in (401, 404, 405), path
        else:
            assert response.status_code in (401, 405), path


async def test_example_route_answers_the_principal(
    service: tuple[str, FastAPI, httpx.AsyncClient],
) -> None:
    name, _app, client = service
    response = await client.get("/me", headers=principal_header(d1=["viewer", "analyst"]))
    assert response.status_code == 200
    assert response.json() == {
        "service": name,
        "user": "u1",
        "districts": {"d1": ["analyst", "viewer"]},
    }
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


async def test_unknown_route_is_problem_json(
    service: tuple[str, FastAPI, httpx.AsyncClient],
) -> None:
    _name, _app, client = service
    response = await client.get("/no/such/route", headers=principal_header())
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404


async def test_openapi_documents_the_problem_schema(
    service: tuple[str, FastAPI, httpx.AsyncClient],
) -> None:
    _name, _app, client = service
    document = (await client.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    assert "Problem" in document["components"]["schemas"]
    assert "/me" in document["paths"]
    # What the edge and the commit may answer on any operation is documented on each one.
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            where = f"{method.upper()} {path}"
            if path in PUBLIC_PATHS:
                continue
            assert {"400", "409", "503"} <= responses.keys(), where
            assert ("413" in responses) == ("requestBody" in operation), where
            assert "repeated-header" in responses["400"]["description"], where
            assert "database-unavailable" in responses["503"]["description"], where


async def test_openapi_documents_the_unknown_query_parameter_on_every_operation(
    service: tuple[str, FastAPI, httpx.AsyncClient],
) -> None:
    _name, _app, client = service
    document = (await client.get("/openapi.json")).json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            refused = operation["responses"]["422"]
            assert "unknown-query-parameter" in refused["description"], (method, path)
            assert "application/problem+json" in refused["content"], (method, path)


async def test_every_get_route_refuses_an_unknown_query_parameter(
    service: tuple[str, FastAPI, httpx.AsyncClient],
) -> None:
    """Enumerated from the app's routes, public and operational ones included; path parameters
    hold a made-up id, and the 422 comes before the 404 of an unknown one. The accepted names
    are exactly the query parameters the route documents. Only /openapi.json, which is not an
    operation, serves whatever the query string."""
    _name, app, client = service
    document = (await client.get("/openapi.json")).json()
    gets = sorted(p for p, methods in route_table(app) if "GET" in methods)
    assert "/me" in gets
    assert "/healthz" in gets
    for template in gets:
        path = concrete_path(template)
        response = await client.get(
            path, params={"no_such_parameter": "1"}, headers=principal_header(hq=["admin"])
        )
        if template == "/openapi.json":
            assert response.status_code == 200
            continue
        assert response.status_code == 422, (template, response.text)
        assert response.headers["content-type"] == "application/problem+json", template
        body = response.json()
        assert body["type"] == "https://chorus.dev/problems/unknown-query-parameter", template
        assert body["status"] == 422
        assert body["unknown_parameters"] == ["no_such_parameter"], template
        operation = document["paths"].get(template, {}).get("get")
        if operation is not None:
            documented = {
                parameter["name"]
                for parameter in operation.get("parameters", ())
                if parameter["in"] == "query"
            }
            assert set(body["accepted_parameters"]) == documented, template


async def test_readiness_fails_while_the_database_is_unreachable(
    infrastructure: Infrastructure,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    app = build_app(
        "inventory", f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port}/x", infrastructure
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            assert (await client.get("/healthz")).status_code == 200
            response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["checks"]["database"].startswith("unavailable")
    assert response.json()["checks"]["broker"] == "ok"


async def test_logs_are_json_lines_carrying_the_request_id(
    infrastructure: Infrastructure, capsys: pytest.CaptureFixture[str]
) -> None:
    database_url = await migrated_database(infrastructure, "metrics")
    app = build_app("metrics", database_url, infrastructure)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            response = await client.get(
                "/me", headers={**principal_header(), "x-request-id": "req-42"}
            )
    assert response.headers["x-request-id"] == "req-42"
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    access = [entry for entry in lines if entry["logger"] == "chorus.access"]
    assert access, lines
    assert access[-1]["request_id"] == "req-42"
    assert access[-1]["service"] == "metrics"
    assert access[-1]["message"].startswith("GET /me 200")


async def test_nul_characters_and_oversized_json_are_refused_at_the_edge(
    service: tuple[str, FastAPI, httpx.AsyncClient],
) -> None:
    _name, _app, client = service
    headers = {**principal_header(), "content-type": "application/json"}
    nul = await client.post("/me", content=b'{"name": "a\\u0000b"}', headers=headers)
    assert nul.status_code == 422
    assert nul.json()["type"].endswith("/nul-character")
    escaped = await client.post("/me", content=b'{"name": "a\\\\u0000b"}', headers=headers)
    assert escaped.status_code == 405  # a literal backslash-u: passes the guard, wrong method
    query = await client.get("/me?q=a%00b", headers=principal_header())
    assert query.status_code == 422
    huge = await client.post("/me", content=b'{"x": "' + b"a" * 2_000_000 + b'"}', headers=headers)
    assert huge.status_code == 413
    assert huge.headers["content-type"] == "application/problem+json"


async def test_the_asyncapi_document_is_valid_and_lists_the_catalog(
    service: tuple[str, FastAPI, httpx.AsyncClient],
) -> None:
    """Served without a principal, valid by the official AsyncAPI 3.0.0 schema, and naming
    exactly the events the service's publisher accepts."""
    name, _app, client = service
    response = await client.get("/asyncapi.json")
    assert response.status_code == 200
    document = response.json()
    assert specification_errors(document) == []
    assert document["channels"]["events"]["address"] == f"chorus.{name}.events"
    catalog = import_module(f"services.{name}.models").messaging.publisher.catalog
    declared = {catalog.type_of_model(model) for model in catalog}
    messages = document["components"]["messages"]
    assert {message["name"] for message in messages.values()} == declared
    sent = document["operations"].get("publish", {}).get("messages", [])
    assert len(sent) == len(declared)


async def test_the_openapi_document_is_valid_and_describes_the_service_at_the_gateway(
    service: tuple[str, FastAPI, httpx.AsyncClient],
) -> None:
    """Valid by openapi-spec-validator; its server is the service's base at the gateway, so
    its paths work as they are from there; the gateway's bearer JWT is required exactly where
    the gateway asks for one (not on the operational and /public routes)."""
    name, app, client = service
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    validate(document)
    public_base_url = app.state.settings.public_base_url
    assert public_base_url == "http://localhost:8000"
    assert [server["url"] for server in document["servers"]] == [
        f"http://localhost:8000/api/{name}"
    ]
    assert document["components"]["securitySchemes"] == {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": document["components"]["securitySchemes"]["bearer"]["description"],
        }
    }
    seen = set()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            open_to_anyone = path in OPERATIONAL_PATHS or path.startswith(PUBLIC_PREFIX + "/")
            expected = [] if open_to_anyone else [{"bearer": []}]
            assert operation["security"] == expected, (method, path)
            seen.add((path, "[]" if open_to_anyone else "bearer"))
    assert ("/me", "bearer") in seen
    assert ("/healthz", "[]") in seen


async def test_the_server_of_the_openapi_document_follows_the_public_base_url(
    infrastructure: Infrastructure,
) -> None:
    database_url = await migrated_database(infrastructure, "approvals")
    app = build_app(
        "approvals", database_url, infrastructure, public_base_url="https://chorus.example/edge/"
    )
    document = app.openapi()
    assert [server["url"] for server in document["servers"]] == [
        "https://chorus.example/edge/api/approvals"
    ]
    validate(document)


async def test_docs_serve_swagger_ui_loading_the_document_by_a_relative_url(
    service: tuple[str, FastAPI, httpx.AsyncClient],
) -> None:
    """Relative, so the page works behind the gateway's /api/<service> prefix too (the e2e
    test loads it there)."""
    name, _app, client = service
    page = await client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "swagger-ui" in page.text
    [document_url] = re.findall(r"url: '([^']*)'", page.text)
    assert document_url == "openapi.json"
    behind_the_gateway = urljoin(f"http://gateway/api/{name}/docs", document_url)
    assert behind_the_gateway == f"http://gateway/api/{name}/openapi.json"
    served = await client.get(urljoin("http://service/docs", document_url))
    assert served.status_code == 200
    assert served.json()["info"]["title"] in page.text
