"""JSON logs carrying the request id, the request-id middleware and Prometheus metrics.

Credentials in paths never reach a log: the path segment after ``/public/<kind>/`` (a calendar
feed token, an outside reviewer's token) is what authenticates those routes, and the database
keeps only its hash. ``redact`` replaces it with a short fingerprint (the first hex digits of
its SHA-256), enough to tell the requests of one token apart from another's. The access log and
the gateway's logs redact what they write; the JSON formatter redacts every line again, so a
path in another logger's message or in a traceback is covered too.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "x-request-id"
TRACEPARENT_HEADER = "traceparent"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

# The segment after /public/<kind>/: a token, up to the next slash, query or fragment.
_PUBLIC_TOKEN = re.compile(r"(/public/[^/?#\s]+/)([^/?#\s]+)", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` with every public route's token replaced by its fingerprint."""
    if "/public/" not in text.lower():
        return text
    return _PUBLIC_TOKEN.sub(lambda m: m.group(1) + fingerprint(m.group(2)), text)


def fingerprint(secret: str) -> str:
    return "~" + hashlib.sha256(secret.encode()).hexdigest()[:8]


request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
traceparent_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "traceparent", default=None
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        service = getattr(record, "service", None) or _service_name
        if service:
            entry["service"] = service
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


_service_name: str | None = None


def configure_logging(service_name: str, level: str = "INFO") -> None:
    """JSON lines on stderr for the whole process (uvicorn's loggers included)."""
    global _service_name
    _service_name = service_name
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # One line per request comes from our middleware; uvicorn's access log would repeat it.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)


def new_request_id() -> str:
    return uuid.uuid4().hex


class HttpMetrics:
    """Per-app Prometheus registry, so several apps can live in one process (tests)."""

    def __init__(self, service_name: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "chorus_http_requests",
            "HTTP requests handled",
            ["service", "method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "chorus_http_request_duration_seconds",
            "HTTP request latency",
            ["service", "method", "route"],
            registry=self.registry,
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.events_relayed = Counter(
            "chorus_outbox_events_relayed",
            "Outbox rows published to the broker",
            ["service"],
            registry=self.registry,
        )
        self.events_consumed = Counter(
            "chorus_events_consumed",
            "Events handled by an idempotent consumer",
            ["service", "consumer"],
            registry=self.registry,
        )
        self.service_name = service_name


class RequestContextMiddleware:
    """Request id (kept from the gateway or made here), trace context, access log and metrics.

    A pure ASGI middleware: BaseHTTPMiddleware would buffer streaming bodies.
    """

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics
        self.log = logging.getLogger("chorus.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        incoming = headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else new_request_id()
        rid_token = request_id_var.set(request_id)
        tp_token = traceparent_var.set(headers.get(TRACEPARENT_HEADER))
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (REQUEST_ID_HEADER.encode(), request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            route_name = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.requests.labels(
                self.metrics.service_name, method, route_name, str(status)
            ).inc()
            self.metrics.latency.labels(self.metrics.service_name, method, route_name).observe(
                elapsed
            )
            self.log.info("%s %s %d %.1fms", method, redact(scope["path"]), status, elapsed * 1000)
            request_id_var.reset(rid_token)
            traceparent_var.reset(tp_token)
