"""The service app factory: every service is built the same way.

``create_service_app`` wires what DESIGN.md asks of each service: the engine and per-request
session, problem+json errors, the principal on every route of the service's API router, query
strings read one way on every route (an undeclared parameter is refused; see chassis.query),
health and metrics, request ids in JSON logs, and the background work of the lifespan (the
outbox relay and the idempotent consumers).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import import_module
from importlib.util import find_spec
from types import ModuleType
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import MetaData, Table, text

from chassis.asyncapi import asyncapi_document
from chassis.consistency import ConsistencyHeader, ConsistencyWait, consumers_by_type
from chassis.consumer import Handler, IdempotentConsumer, inbox_table
from chassis.database import (
    CommitConflict,
    DatabaseUnavailable,
    create_engine,
    create_session_factory,
)
from chassis.districts import DistrictTree
from chassis.errors import Problem, install_problem_handlers, problem_response, problem_responses
from chassis.events import CloudEvent, EventCatalog
from chassis.guard import PayloadTooLarge, RepeatedHeader, RequestGuard
from chassis.jobs import JobQueue, PeriodicJob
from chassis.kafka import create_producer, ensure_topics
from chassis.observability import HttpMetrics, RequestContextMiddleware, configure_logging
from chassis.openapi import describe_for_clients
from chassis.outbox import OutboxPublisher, OutboxRelay, outbox_table
from chassis.principal import PUBLIC_PREFIX, PrincipalDep, require_principal
from chassis.query import QueryParameterGate, UnknownQueryParameter, document_comma_separated
from chassis.settings import ServiceSettings, events_topic

log = logging.getLogger("chassis.app")
PartT = TypeVar("PartT")

# Routes a service serves without a principal: probes and scraping by the platform, and the
# documents the gateway merges. Everything else needs the gateway-signed principal.
PUBLIC_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/openapi.json", "/asyncapi.json", "/docs"}
)
READINESS_TIMEOUT_SECONDS = 2.0
TOPIC_PARTITIONS = 6


@dataclass(frozen=True)
class ConsumerSpec:
    """A consumer of a service: its name (the consumer group is ``<service>.<name>``), the
    producing services whose topics it reads, and a handler per event type."""

    name: str
    sources: Sequence[str]
    handlers: Mapping[str, Handler]


@dataclass(frozen=True)
class Messaging:
    """A service's outbox and inbox tables and the publisher that writes into the outbox."""

    outbox: Table
    inbox: Table
    publisher: OutboxPublisher

    @classmethod
    def of(cls, metadata: MetaData, published: EventCatalog) -> Messaging:
        """The outbox and inbox tables of a service, added to its metadata (so its Alembic
        migrations know them), and its publisher of the events its catalog declares."""
        outbox = outbox_table(metadata)
        return cls(
            outbox=outbox,
            inbox=inbox_table(metadata),
            publisher=OutboxPublisher(published, outbox),
        )


@dataclass
class Runtime:
    """What the lifespan started, for readiness and for tests to reach in."""

    relay: OutboxRelay | None = None
    consumers: list[IdempotentConsumer] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class ProblemDetails(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None


@dataclass(frozen=True)
class ServiceParts:
    """What a service is made of, found in its package by the shape every service has (held by
    ``tests/test_structure.py``), so that no service lists its own modules again:

    - ``api.router``, and ``api.public_router`` if it has public routes;
    - ``models.messaging``, and ``models.districts`` if it answers scopes from a district tree
      (inventory's own table, or a replica);
    - ``consumers.consumers``;
    - ``jobs.periodic_jobs`` if it has a ``jobs`` module;
    - the package's docstring, which describes the service in its documents."""

    title: str
    description: str
    router: APIRouter
    messaging: Messaging
    consumers: Sequence[ConsumerSpec] = ()
    periodic_jobs: Sequence[PeriodicJob] = ()
    public_router: APIRouter | None = None
    districts: Table | None = None

    @classmethod
    def of(cls, package: str) -> ServiceParts:
        api = import_module(f"{package}.api")
        models = import_module(f"{package}.models")
        jobs = import_module(f"{package}.jobs") if find_spec(f"{package}.jobs") else None
        return cls(
            title=f"Chorus {package.rsplit('.', 1)[-1]}",
            description=inspect.cleandoc(import_module(package).__doc__ or ""),
            router=_part(api, "router", APIRouter),
            messaging=_part(models, "messaging", Messaging),
            consumers=_part(import_module(f"{package}.consumers"), "consumers", list),
            periodic_jobs=[] if jobs is None else _part(jobs, "periodic_jobs", list),
            public_router=_optional_part(api, "public_router", APIRouter),
            districts=_optional_part(models, "districts", Table),
        )


def _part(module: ModuleType, name: str, kind: type[PartT]) -> PartT:
    """`module.name`, checked to be a `kind`: a service whose module lacks a part, or holds
    something else under its name, fails at start with the name of what is wrong."""
    value = getattr(module, name, None)
    if not isinstance(value, kind):
        raise TypeError(f"{module.__name__}.{name} must be a {kind.__name__}, not {value!r}")
    return value


def _optional_part(module: ModuleType, name: str, kind: type[PartT]) -> PartT | None:
    """`module.name` if the service has that part (checked as `_part` does), else None."""
    return None if getattr(module, name, None) is None else _part(module, name, kind)


def create_service_app(
    settings: ServiceSettings,
    parts: ServiceParts,
    *,
    version: str = "0.1.0",
    configure: Callable[[FastAPI], None] | None = None,
) -> FastAPI:
    """The service's app, from its settings and its parts (``ServiceParts.of``); `configure`
    may add to the app once it is built."""
    configure_logging(settings.service_name, settings.log_level)
    metrics = HttpMetrics(settings.service_name)
    runtime = Runtime()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(
            settings.database_url,
            pool_size=settings.database_pool_size,
            statement_timeout=settings.database_statement_timeout_seconds,
            idle_in_transaction_timeout=settings.database_idle_in_transaction_timeout_seconds,
        )
        session_factory = create_session_factory(engine)
        app.state.engine = engine
        app.state.session_factory = session_factory
        producer = create_producer(
            settings.kafka_bootstrap_servers,
            client_id=settings.service_name,
            enable_idempotence=settings.kafka_enable_idempotence,
        )
        await producer.start()
        app.state.producer = producer
        jobs = (
            JobQueue(settings, session_factory, parts.periodic_jobs)
            if parts.periodic_jobs
            else None
        )
        app.state.jobs = jobs
        try:
            if jobs is not None:
                await jobs.open()
            topics = {settings.events_topic, settings.dead_letter_topic}
            topics.update(events_topic(src) for spec in parts.consumers for src in spec.sources)
            await ensure_topics(
                settings.kafka_bootstrap_servers, topics, partitions=TOPIC_PARTITIONS
            )
            if settings.process_role == "web":
                yield  # serves HTTP only; a worker process relays, consumes and runs jobs
                return
            if jobs is not None:
                runtime.tasks.append(asyncio.create_task(jobs.run_worker(), name="job-worker"))
            runtime.relay = OutboxRelay(
                service_name=settings.service_name,
                database_url=settings.database_url,
                producer=producer,
                batch_size=settings.relay_batch_size,
                poll_interval=settings.relay_poll_interval_seconds,
                standby_retry=settings.relay_standby_retry_seconds,
                on_sent=metrics.events_relayed.labels(settings.service_name).inc,
            )
            runtime.tasks.append(asyncio.create_task(runtime.relay.run(), name="outbox-relay"))
            for spec in parts.consumers:
                counter = metrics.events_consumed.labels(settings.service_name, spec.name)
                consumer = IdempotentConsumer(
                    name=consumer_name(settings, spec),
                    topics=[events_topic(src) for src in spec.sources],
                    handlers=spec.handlers,
                    session_factory=session_factory,
                    inbox=parts.messaging.inbox,
                    publisher=parts.messaging.publisher,
                    dead_letter_topic=settings.dead_letter_topic,
                    bootstrap_servers=settings.kafka_bootstrap_servers,
                    max_attempts=settings.consumer_max_attempts,
                    retry_backoff=settings.consumer_retry_backoff_seconds,
                    on_committed=_count_into(counter),
                )
                runtime.consumers.append(consumer)
                runtime.tasks.append(asyncio.create_task(consumer.run(), name=consumer.name))
            yield
        finally:
            await stop_tasks(runtime.tasks)
            runtime.tasks.clear()
            runtime.consumers.clear()
            if jobs is not None:
                await jobs.close()
            await producer.stop()
            await engine.dispose()

    app = FastAPI(
        title=parts.title,
        description=parts.description,
        version=version,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # Every API route, operational and public ones too; not /openapi.json, which is not an
        # operation of the document it serves.
        dependencies=[
            Depends(QueryParameterGate()),
            Depends(consistency_wait(settings, parts.messaging, parts.consumers)),
        ],
    )
    app.state.settings = settings
    app.state.internal_key = settings.internal_key.get_secret_value().encode()
    app.state.runtime = runtime
    app.state.district_tree = None if parts.districts is None else DistrictTree(parts.districts)
    app.state.metrics = metrics
    install_problem_handlers(app)
    app.add_middleware(
        RequestGuard,
        max_json_bytes=settings.max_json_body_bytes,
        max_body_bytes=settings.max_body_bytes,
    )
    app.add_middleware(ConsistencyHeader)
    # Added last, so it runs first: refusals by the guard are logged with a request id too.
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    app.include_router(_operations_router(settings, runtime, metrics))
    app.include_router(
        _event_document_router(parts.messaging.publisher.catalog, parts.description, version)
    )
    app.include_router(parts.router, dependencies=[Depends(require_principal)])
    app.include_router(_caller_router(settings), dependencies=[Depends(require_principal)])
    if parts.public_router is not None:
        # No principal here: each route authenticates its caller itself (see PUBLIC_PREFIX).
        app.include_router(parts.public_router, prefix=PUBLIC_PREFIX)
    if configure is not None:
        configure(app)
    _document_problems(app)
    describe_for_clients(app, settings)  # servers, security and /docs: chassis.openapi
    return app


async def stop_tasks(tasks: Sequence[asyncio.Task[None]], within: float = 15.0) -> None:
    """Cancel background tasks and wait for them, cancelling again while they linger: a
    library that swallows one cancellation (a connection pool retrying, say) would otherwise
    hang the shutdown for good."""
    pending = {task for task in tasks if not task.done()}
    deadline = asyncio.get_running_loop().time() + within
    while pending:
        for task in pending:
            task.cancel()
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            log.error("tasks did not stop: %s", sorted(t.get_name() for t in pending))
            return
        _done, pending = await asyncio.wait(pending, timeout=min(1.0, remaining))
    await asyncio.gather(*tasks, return_exceptions=True)


def consistency_wait(
    settings: ServiceSettings, messaging: Messaging, consumers: Sequence[ConsumerSpec]
) -> ConsistencyWait:
    """The wait for a request's consistency token, over the inbox rows of this service's
    consumers (named as ``IdempotentConsumer`` names them)."""
    return ConsistencyWait(
        messaging.inbox,
        consumers_by_type((consumer_name(settings, spec), spec.handlers) for spec in consumers),
        settings.consistency_wait_seconds,
    )


def consumer_name(settings: ServiceSettings, spec: ConsumerSpec) -> str:
    """The consumer's group id, and its name in the inbox: ``<service>.<name>``."""
    return f"{settings.consumer_group_prefix or settings.service_name}.{spec.name}"


def _count_into(counter: Any) -> Callable[[Sequence[CloudEvent]], None]:
    def count(events: Sequence[CloudEvent]) -> None:
        counter.inc(len(events))

    return count


def route_table(app: FastAPI) -> list[tuple[str, frozenset[str]]]:
    """Every (path, methods) the app serves, included routers flattened."""
    table = []
    for route in iter_route_contexts(app.routes):
        path = getattr(route, "path", None)
        methods = getattr(route, "methods", None)
        if path is not None:
            table.append((str(path), frozenset(methods or ())))
    return table


class Caller(BaseModel):
    service: str
    user: str
    districts: dict[str, list[str]]


def _caller_router(settings: ServiceSettings) -> APIRouter:
    callers = APIRouter(tags=[settings.service_name])

    @callers.get("/me", response_model=Caller, summary="Who is calling")
    async def who_am_i(principal: PrincipalDep) -> Caller:
        """The caller as this service sees them: user id and roles per district."""
        return Caller(
            service=settings.service_name,
            user=principal.sub,
            districts={d: sorted(roles) for d, roles in principal.grants.items()},
        )

    return callers


def _event_document_router(catalog: EventCatalog, description: str, version: str) -> APIRouter:
    documents = APIRouter(tags=["operations"])
    document = asyncapi_document(catalog, description=description, version=version)

    @documents.get("/asyncapi.json", summary="AsyncAPI document of the events published")
    async def asyncapi() -> dict[str, Any]:
        """AsyncAPI 3.0: the Kafka topic this service publishes to, each event type it may
        emit there as a CloudEvent, and the JSON Schema of each type's data."""
        return document

    return documents


def _operations_router(
    settings: ServiceSettings, runtime: Runtime, metrics: HttpMetrics
) -> APIRouter:
    ops = APIRouter(tags=["operations"])

    @ops.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, str]:
        """The process is up and serving."""
        return {"status": "ok", "service": settings.service_name}

    @ops.get("/readyz", summary="Readiness", responses={503: {"model": ProblemDetails}})
    async def readyz(request: Request) -> JSONResponse:
        """Ready when the database and the broker answer, the background work is running and
        every consumer has joined its group."""
        checks: dict[str, str] = {}
        try:
            async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
                async with request.app.state.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"unavailable: {type(exc).__name__}"
        try:
            async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
                await request.app.state.producer.client.fetch_all_metadata()
            checks["broker"] = "ok"
        except Exception as exc:
            checks["broker"] = f"unavailable: {type(exc).__name__}"
        dead = [t.get_name() for t in runtime.tasks if t.done()]
        joining = [c.name for c in runtime.consumers if not c.joined.is_set()]
        if dead:
            checks["background"] = f"stopped: {', '.join(dead)}"
        elif joining:
            # Not yet a group member: events published now would reach it only later.
            checks["background"] = f"joining: {', '.join(joining)}"
        else:
            checks["background"] = "ok"
        if all(v == "ok" for v in checks.values()):
            return JSONResponse({"status": "ready", "checks": checks})
        return problem_response(
            503, "not-ready", "Not ready", "A dependency is unavailable.", checks=checks
        )

    @ops.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return ops


# What any route of the service may answer whatever its handler does: the request guard's
# refusals, and a commit that fails (chassis.database).
_EDGE_PROBLEMS: tuple[type[Problem], ...] = (RepeatedHeader, CommitConflict, DatabaseUnavailable)
_BODY_PROBLEMS: tuple[type[Problem], ...] = (PayloadTooLarge,)
# What every operation may answer, the operational ones included (chassis.query).
_QUERY_PROBLEMS: tuple[type[Problem], ...] = (UnknownQueryParameter,)


def _document_edge_problems(schema: dict[str, Any]) -> None:
    """Add the problems every operation may return to each operation's responses, beside
    those an endpoint declared itself."""
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            problems = _QUERY_PROBLEMS
            if path not in PUBLIC_PATHS:
                problems += _EDGE_PROBLEMS + (_BODY_PROBLEMS if "requestBody" in operation else ())
            responses = operation.setdefault("responses", {})
            for status, entry in problem_responses(*problems).items():
                declared = responses.setdefault(str(status), entry)
                if entry["description"] not in declared.get("description", ""):
                    declared["description"] = f"{declared['description']}; {entry['description']}"
                # FastAPI's own 422 entry names only its JSON error body; ours is a problem.
                declared.setdefault("content", {}).update(
                    {k: v for k, v in entry["content"].items() if k not in declared["content"]}
                )


def _document_problems(app: FastAPI) -> None:
    """Add the Problem schema that `problem_responses` refers to, to the OpenAPI document."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Problem"] = ProblemDetails.model_json_schema()
        _document_edge_problems(schema)
        document_comma_separated(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
