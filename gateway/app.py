"""The gateway app: ``/api/<service>/<path>`` to the service, authenticated and streamed.

What a request may reach is judged on exactly the path that is forwarded, before anything else:
a path that the service could read as another one (a dot segment, ``%2e%2e`` included, an
encoded slash or backslash, an empty segment) is refused with 400. Then a service's operational
routes (``chassis.openapi.OPERATIONAL_PATHS``: probes, documents, /docs) and its ``/public/...``
routes pass without a token or a principal; its ``/metrics`` is for the cluster and not
forwarded (404); every other route needs a valid JWT.

The upstream client is aiohttp: measured on our 2-core machines, a Starlette proxy over aiohttp
kept 5,800 requests/s where httpx's pool stalled at 490 (DESIGN.md). Bodies are streamed both
ways; nothing is buffered whole in the gateway. A request that repeats Content-Type or
Content-Length is refused (400) rather than forwarded. Paths in the gateway's logs go through
``chassis.observability.redact``: a public route's token never appears in them.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from urllib.parse import quote, unquote

import aiohttp
from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse
from multidict import CIMultiDict
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.background import BackgroundTask

from chassis.errors import Unauthorized, install_problem_handlers, problem_response
from chassis.guard import SingleHeaderGuard
from chassis.observability import (
    TRACEPARENT_HEADER,
    HttpMetrics,
    RequestContextMiddleware,
    configure_logging,
    redact,
    request_id_var,
)
from chassis.openapi import CLUSTER_ONLY_PATHS, OPERATIONAL_PATHS
from chassis.principal import PRINCIPAL_HEADER, PUBLIC_PREFIX, sign_principal
from gateway.auth import TokenVerifier, grants_from_claims
from gateway.settings import GatewaySettings, get_settings

log = logging.getLogger("gateway")

# Hop-by-hop headers (RFC 9110 7.6.1) and those the gateway sets itself.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
    }
)
NOT_FORWARDED = HOP_BY_HOP | {"authorization", PRINCIPAL_HEADER, "content-length"}
# The gateway's own server adds these; the upstream's copies would be duplicates.
NOT_RETURNED = HOP_BY_HOP | {"date", "server", "x-request-id"}
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging("gateway", settings.log_level)
    upstreams = settings.upstreams()
    internal_key = settings.internal_key.get_secret_value().encode()
    metrics = HttpMetrics("gateway")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(
            limit=settings.max_connections,
            limit_per_host=settings.max_connections,
            keepalive_timeout=30,
        )
        http = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()
        )
        app.state.http = http
        app.state.verifier = TokenVerifier(settings, http)
        try:
            yield
        finally:
            await http.close()

    app = FastAPI(
        title="Chorus gateway",
        description="The single entry point of Chorus: `/api/<service>/...`.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    install_problem_handlers(app)
    # A repeated Content-Type or Content-Length would be read one way here and another way
    # upstream; refused before anything is forwarded.
    app.add_middleware(SingleHeaderGuard)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """The gateway is up."""
        return {"status": "ok", "service": "gateway"}

    @app.get("/readyz", tags=["operations"])
    async def readyz() -> dict[str, str]:
        """The gateway holds no state of its own; ready once serving."""
        return {"status": "ready"}

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.api_route("/api/{service}/{path:path}", methods=METHODS, include_in_schema=False)
    async def proxy(service: str, path: str, request: Request) -> Response:
        ambiguity = _path_ambiguity(_raw_path(request))
        if ambiguity is not None:
            return problem_response(
                400,
                "ambiguous-path",
                "Ambiguous path",
                f"The path has {ambiguity}; send it in its plain form.",
                instance=request.url.path,
            )
        upstream = upstreams.get(service)
        if upstream is None:
            return problem_response(
                404,
                "not-found",
                "Not found",
                f"There is no service named {service!r}.",
                instance=request.url.path,
            )
        if _is_cluster_only(path):
            return problem_response(
                404,
                "not-found",
                "Not found",
                "Operational metrics are served to the cluster, not through the gateway.",
                instance=request.url.path,
            )
        request_id = request_id_var.get()
        if _is_public(path) or _is_operational(path):
            # The service authenticates public routes itself (a feed token, a webhook
            # signature); operational ones serve anyone.
            url = f"{upstream}/{_raw_subpath(request, service, path)}"
            return await _forward(request, url, None, request_id, settings)
        claims = await request.app.state.verifier.verify(request.headers.get("authorization"))
        principal = sign_principal(
            internal_key,
            sub=str(claims["sub"]),
            name=claims.get("name") if isinstance(claims.get("name"), str) else None,
            grants=grants_from_claims(claims),
            request_id=request_id,
        )
        url = f"{upstream}/{_raw_subpath(request, service, path)}"
        return await _forward(request, url, principal, request_id, settings)

    return app


def _is_public(path: str) -> bool:
    """A service's ``/public/...`` routes: no JWT, no principal (see chassis.app)."""
    first = path.split("/", 1)[0]
    return first == PUBLIC_PREFIX.strip("/")


def _is_operational(path: str) -> bool:
    """Exactly one of the routes every service serves to anyone (a probe, a document)."""
    return f"/{path}" in OPERATIONAL_PATHS


def _is_cluster_only(path: str) -> bool:
    """``/metrics`` and anything under it: whatever follows, the service's own route decides,
    and it is not the gateway's to expose."""
    return f"/{path.split('/', 1)[0]}" in CLUSTER_ONLY_PATHS


def _raw_path(request: Request) -> str:
    """The whole path as the client sent it, still percent-encoded."""
    raw_path: bytes | None = request.scope.get("raw_path")
    if raw_path is None:
        return quote(request.url.path)
    return raw_path.decode("latin-1")


def _path_ambiguity(raw_path: str) -> str | None:
    """What in the path another layer could read as a different path, or None.

    Each segment is decoded until it no longer changes: a layer that decodes once more than
    the gateway (or normalises ``%2e`` to ``.`` and then removes dot segments, as URL
    libraries do) must find no ``.`` or ``..`` segment and no slash or backslash inside a
    segment. An empty segment (``//``) is refused too: some layers merge it, others keep it.
    A trailing slash is the one empty segment allowed.
    """
    segments = raw_path.split("/")[1:]
    for position, segment in enumerate(segments):
        decoded = _fully_decoded(segment)
        if decoded is None:
            return "a segment encoded over and over"
        if decoded in (".", ".."):
            return "a dot segment"
        if "/" in decoded or "\\" in decoded:
            return "an encoded slash or a backslash in a segment"
        if not segment and position < len(segments) - 1:
            return "an empty segment"
    return None


def _fully_decoded(segment: str, rounds: int = 4) -> str | None:
    """The segment percent-decoded until it no longer changes; None if it still does after
    `rounds` (no client of ours encodes a path more than twice)."""
    for _ in range(rounds):
        decoded = unquote(segment)
        if decoded == segment:
            return decoded
        segment = decoded
    return None


def _raw_subpath(request: Request, service: str, path: str) -> str:
    """The path after ``/api/<service>/`` as the client sent it, still percent-encoded.

    The decoded ``path`` would turn an encoded ``/``, ``?`` or ``#`` into structure: a client's
    ``items%3Fdistrict=d2`` would reach the service as the query ``?district=d2``.
    """
    raw_path: bytes | None = request.scope.get("raw_path")
    if raw_path is not None:
        parts = raw_path.decode("latin-1").split("/", 3)
        if len(parts) == 4 and unquote(parts[2]) == service:
            return parts[3]
    return quote(path)


async def _forward(
    request: Request,
    url: str,
    principal: str | None,
    request_id: str | None,
    settings: GatewaySettings,
) -> Response:
    http: aiohttp.ClientSession = request.app.state.http
    # A multidict: a header the client repeats reaches the service with every value.
    headers = CIMultiDict(
        (k, v) for k, v in request.headers.items() if k.lower() not in NOT_FORWARDED
    )
    if principal is not None:
        headers[PRINCIPAL_HEADER] = principal
    if request_id:
        headers["x-request-id"] = request_id
    if TRACEPARENT_HEADER not in headers:
        headers[TRACEPARENT_HEADER] = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
    client = request.client
    if client is not None:
        prior = request.headers.get("x-forwarded-for")
        headers["x-forwarded-for"] = f"{prior}, {client.host}" if prior else client.host
    headers["x-forwarded-proto"] = request.url.scheme
    headers["x-forwarded-host"] = request.headers.get("host", "")

    has_body = request.headers.get("content-length", "0") != "0" or (
        "transfer-encoding" in request.headers
    )
    body = request.stream() if has_body else None
    if has_body and "content-length" in request.headers:
        # Keep the length so the upstream can refuse oversized bodies before reading them.
        headers["content-length"] = request.headers["content-length"]
    timeout = aiohttp.ClientTimeout(
        total=None,
        connect=settings.connect_timeout_seconds,
        sock_read=settings.upstream_timeout_seconds,
    )
    try:
        upstream = await http.request(
            request.method,
            url,
            params=list(request.query_params.multi_items()),
            headers=headers,
            data=body,
            timeout=timeout,
            allow_redirects=False,
        )
    except TimeoutError:
        return problem_response(
            504,
            "upstream-timeout",
            "Upstream timeout",
            "The service did not answer in time.",
            instance=request.url.path,
        )
    except aiohttp.ClientError as exc:
        # Decoded first: an encoded "/public/" is still a public route upstream.
        log.warning("upstream %s unreachable: %s", redact(unquote(url)), redact(repr(exc)))
        return problem_response(
            502,
            "bad-gateway",
            "Bad gateway",
            "The service is unavailable.",
            instance=request.url.path,
        )
    response = StreamingResponse(
        _relay_body(upstream),
        status_code=upstream.status,
        background=BackgroundTask(upstream.release),
    )
    # The upstream's header lines as bytes: a dict of decoded strings would keep one of each
    # repeated header (Set-Cookie) and fail with a 500 on a value outside latin-1.
    response.raw_headers = [
        (name.lower(), value)
        for name, value in upstream.raw_headers
        if name.decode("latin-1").lower() not in NOT_RETURNED
    ]
    return response


async def _relay_body(upstream: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    try:
        async for chunk in upstream.content.iter_any():
            yield chunk
    except (TimeoutError, aiohttp.ClientError) as exc:
        # Headers are already sent; all we can do is cut the response short and say why.
        log.warning("upstream body broke off: %s", redact(repr(exc)))
        upstream.close()


__all__ = ["Unauthorized", "create_app"]
