"""A service as its clients see it: through the gateway, under ``<public base URL>/api/<service>``.

Clients never reach a service directly; they call the gateway, which serves each service under
``/api/<service>`` and asks for a bearer JWT on every route except the operational ones
(``OPERATIONAL_PATHS``) and the service's ``/public/...`` routes. This module keeps the service's
documents and links true to that view:

- the OpenAPI document names the service's base at the gateway in ``servers``, so its paths work
  as they are from there, and declares the gateway's bearer JWT (``securitySchemes``): required
  on every operation whose route takes the principal, ``security: []`` on the others;
- ``/docs`` serves Swagger UI, which loads the document by a relative URL: ``openapi.json``
  beside the page, so it works at the service itself and behind the gateway's prefix alike;
- ``PublicLinksDep`` builds every link a service returns, absolute from the configured public
  base URL (``ServiceSettings.public_base_url``), so a link works as it is from outside.

Invariant: a route takes the principal exactly when the gateway asks for a token on it; the
tests hold each service's document against the gateway's rule (``OPERATIONAL_PATHS``, the
``/public`` prefix).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.routing import iter_route_contexts

from chassis.principal import require_principal
from chassis.settings import ServiceSettings

# Served by every service without a principal and let through by the gateway without a token:
# probes, the service's documents and the page that shows them.
OPERATIONAL_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json", "/asyncapi.json", "/docs"})
# Served by every service without a principal to the cluster only (Prometheus scrapes each
# process); the gateway does not forward them.
CLUSTER_ONLY_PATHS = frozenset({"/metrics"})
DOCS_PATH = "/docs"
BEARER_SCHEME = "bearer"
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def public_base(settings: ServiceSettings) -> str:
    """The service's base URL as clients reach it: the gateway's public URL, then
    ``/api/<service>``."""
    return f"{settings.public_base_url.rstrip('/')}/api/{settings.service_name}"


@dataclass(frozen=True)
class PublicLinks:
    """Absolute links to this service's own routes, as clients reach them."""

    base: str

    def to(self, path: str) -> str:
        """The absolute URL of `path`, a path of this service (``/public/feeds/x.ics``)."""
        return f"{self.base}{path}"


def public_links(request: Request) -> PublicLinks:
    settings: ServiceSettings = request.app.state.settings
    return PublicLinks(public_base(settings))


PublicLinksDep = Annotated[PublicLinks, Depends(public_links)]


def describe_for_clients(app: FastAPI, settings: ServiceSettings) -> None:
    """Give the app's OpenAPI document its server and security, and serve ``/docs``.

    Wraps the ``app.openapi`` already installed (the chassis's problem documentation), so it
    must be called after it."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        schema["servers"] = [
            {"url": public_base(settings), "description": "The service through the gateway"}
        ]
        _document_security(schema, _principal_operations(app))
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_api_route(DOCS_PATH, _swagger_ui(app.title), methods=["GET"], include_in_schema=False)


def _swagger_ui(title: str) -> Callable[[], Any]:
    async def docs() -> HTMLResponse:
        # Relative: beside /docs at the service, beside /api/<service>/docs at the gateway.
        return get_swagger_ui_html(openapi_url="openapi.json", title=f"{title} - API")

    return docs


def _principal_operations(app: FastAPI) -> set[tuple[str, str]]:
    """(path template, lower-case method) of every route that takes the principal."""
    found: set[tuple[str, str]] = set()
    for route in iter_route_contexts(app.routes):
        dependant = getattr(route, "dependant", None)
        path = getattr(route, "path_format", None)
        if dependant is None or path is None or not _takes_principal(dependant):
            continue
        found.update((str(path), method.lower()) for method in route.methods or ())
    return found


def _takes_principal(dependant: Dependant) -> bool:
    return any(
        sub.call is require_principal or _takes_principal(sub) for sub in dependant.dependencies
    )


def _document_security(schema: dict[str, Any], principal_operations: set[tuple[str, str]]) -> None:
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})[BEARER_SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "The caller's JWT, verified by the gateway (which hands the service a "
        "signed principal instead)",
    }
    for path, method, operation in _operations(schema):
        needed = (path, method) in principal_operations
        operation["security"] = [{BEARER_SCHEME: []}] if needed else []


def _operations(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation
