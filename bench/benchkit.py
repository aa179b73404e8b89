"""What the benchmarks share: a service app on the embedded stack (durable PostgreSQL and the
broker, as `chorus dev` runs them), principal headers, timing, the floors and the one table
every bench prints.

Why floors: the same code gave figures 2.5-4x apart on two machines (outbox p50 9.5 ms and
56.7 ms; a 50k-account import in 9.5 s and 26.1 s). An absolute figure says more about the
machine than about the code. So every figure is printed beside a floor measured in the same
run, on the same database, with the same sizes, and the ratio between them:

  reads   the same SQL statements the endpoint sent (recorded from the engine while it served
          one request), replayed through a raw asyncpg connection in one transaction, with the
          same parameters and as many times, interleaved with the HTTP requests so both see
          the same load of the machine;
  HTTP    a trivial route of the same app (GET /healthz) through the same transport, whose
          own floor is a bare ASGI callable;
  writes  as many raw asyncpg transactions of a comparable shape (see `write_floor`), by as
          many concurrent connections.

Invariants of the table (`print_figures`): every figure has a floor and a ratio, the ratio is
the figure's cost over the floor's (>= 1 means slower than the floor) whether the unit is a
time (value / floor) or a rate (floor / value), and a bench prints only its table: the JSON
logs of the services are silenced (`quiet_logs`).

A new bench (webhooks, metrics, the gateway...) takes `embedded_app(service)`, measures with
`read_figures` / `http_floor_figures` / `write_floor` (or a floor of its own, run in the same
process on the same stack), and prints `Figure`s with `print_figures`; bench/outbox.py shows a
floor that is a whole bare pipeline.

The app runs in-process (httpx ASGITransport), so figures are the service and its database
without the network hop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from chassis.migrations import upgrade
from chassis.outbox import asyncpg_dsn
from chassis.principal import PRINCIPAL_HEADER, sign_principal
from chorus.embedded import EmbeddedBroker, EmbeddedPostgres

INTERNAL_KEY = "bench-internal-key-" + uuid.uuid4().hex
# Smaller sizes for a quick run (`CHORUS_BENCH_QUICK=1` or a bench's `--quick`): the same
# figures and floors, in a fraction of the time, to check that a bench still runs.
QUICK = os.environ.get("CHORUS_BENCH_QUICK", "") not in ("", "0", "false")

# Loggers that write one line per request or per batch at INFO: the access log of the chassis,
# httpx's per-request line, uvicorn's, the job queue's and the broker client's.
NOISY_LOGGERS = ("chorus.access", "httpx", "uvicorn", "uvicorn.access", "procrastinate", "aiokafka")


def quiet_logs() -> None:
    """A bench prints its figures only: nothing at INFO or below from any logger.

    `logging.disable` holds whatever an app's `configure_logging` sets on the root logger
    later (create_app sets it to the settings' level), so one call before the app is made is
    enough. Warnings and errors still reach stderr: they say that a figure is not to be
    trusted.
    """
    logging.disable(logging.INFO)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def principal(user: str, grants: dict[str, list[str]]) -> dict[str, str]:
    header = sign_principal(INTERNAL_KEY.encode(), sub=user, grants=grants, ttl=3600)
    return {PRINCIPAL_HEADER: header}


# --- the table ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """One measured figure beside its floor, measured in the same run."""

    name: str
    value: float
    unit: str  # "ms", "s", or a rate: "accounts/s", "events/s"...
    floor: float
    floor_label: str  # what the floor is: "same 3 SQL statements, raw asyncpg"

    @property
    def is_rate(self) -> bool:
        return self.unit.endswith("/s")

    @property
    def ratio(self) -> float:
        """The figure's cost in floors: 1.0 is as fast as the floor, 3.0 three times slower."""
        if self.is_rate:
            return self.floor / self.value if self.value else float("inf")
        return self.value / self.floor if self.floor else float("inf")


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def format_figures(title: str, figures: Sequence[Figure], notes: Sequence[str] = ()) -> str:
    """The one table of every bench: figure | floor | ratio | what the floor is."""
    name_width = max([len("figure"), *(len(f.name) for f in figures)])
    unit_width = max([1, *(len(f.unit) for f in figures)])
    lines = [
        title,
        f"  {'figure':<{name_width}}  {'value':>9} {'':<{unit_width}}  {'floor':>9} "
        f"{'':<{unit_width}}  {'ratio':>7}  floor measured as",
    ]
    for f in figures:
        lines.append(
            f"  {f.name:<{name_width}}  {_number(f.value):>9} {f.unit:<{unit_width}}  "
            f"{_number(f.floor):>9} {f.unit:<{unit_width}}  {f.ratio:>6.1f}x  {f.floor_label}"
        )
    lines += [f"  {note}" for note in notes]
    return "\n".join(lines)


def print_figures(title: str, figures: Sequence[Figure], notes: Sequence[str] = ()) -> None:
    print(format_figures(title, figures, notes), flush=True)


def p50_p95(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[max(0, int(len(ordered) * 0.95) - 1)]


def p50_p95_figures(
    name: str, samples: list[float], floor_samples: list[float], floor_label: str
) -> list[Figure]:
    p50, p95 = p50_p95(samples)
    f50, f95 = p50_p95(floor_samples)
    return [
        Figure(f"{name}  p50", p50, "ms", f50, floor_label),
        Figure(f"{name}  p95", p95, "ms", f95, floor_label),
    ]


# --- the embedded stack and the app ---------------------------------------------------------


@dataclass(frozen=True)
class Stack:
    postgres: EmbeddedPostgres
    broker: EmbeddedBroker


@contextlib.asynccontextmanager
async def embedded_stack(durable: bool = True) -> AsyncIterator[Stack]:
    """A fresh PostgreSQL and broker, removed at the end."""
    work = Path(tempfile.mkdtemp(prefix="chorus-bench-"))
    postgres = EmbeddedPostgres(work / "pg" / "data", durable=durable)
    broker = EmbeddedBroker(work / "broker")
    postgres.start()
    broker.start()
    try:
        yield Stack(postgres, broker)
    finally:
        broker.stop()
        postgres.stop()
        shutil.rmtree(work, ignore_errors=True)


@contextlib.asynccontextmanager
async def embedded_app(
    service: str, *, durable: bool = True, **settings: Any
) -> AsyncIterator[Any]:
    """The service's app (HTTP only) on a fresh migrated database of an embedded stack."""
    quiet_logs()
    async with embedded_stack(durable) as stack:
        url = stack.postgres.url(f"bench_{service}_{uuid.uuid4().hex[:6]}")
        await asyncio.to_thread(upgrade, service, url)
        settings_class = getattr(
            import_module(f"services.{service}.settings"), f"{service.capitalize()}Settings"
        )
        app = import_module(f"services.{service}.app").create_app(
            settings_class(
                database_url=url,
                internal_key=INTERNAL_KEY,
                process_role="web",
                kafka_bootstrap_servers=stack.broker.bootstrap_servers,
                kafka_enable_idempotence=False,
                log_level="WARNING",
                **settings,
            )
        )
        async with app.router.lifespan_context(app):
            yield app


def client_of(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://service", timeout=600
    )


async def raw_connection(app_or_url: Any) -> asyncpg.Connection:
    """A plain asyncpg connection to the app's database: no engine, no pool, no ORM."""
    url = app_or_url if isinstance(app_or_url, str) else str(app_or_url.state.settings.database_url)
    return await asyncpg.connect(asyncpg_dsn(url))


async def vacuum_analyze(app: Any) -> None:
    async with app.state.engine.connect() as conn:
        await conn.execute(text("COMMIT"))  # VACUUM cannot run inside a transaction
        await conn.execute(text("VACUUM ANALYZE"))


# --- the read floor: the endpoint's own SQL through raw asyncpg -----------------------------


@dataclass(frozen=True)
class Statement:
    sql: str
    parameters: tuple[Any, ...]  # a tuple of parameter tuples when `many`
    many: bool = False


@contextlib.contextmanager
def recorded_statements(engine: AsyncEngine) -> Iterator[list[Statement]]:
    """Every statement the engine sends while the block runs, as the driver receives it (the
    asyncpg dialect's `$n` placeholders, bind casts and processed parameters), so asyncpg can
    run it unchanged."""
    statements: list[Statement] = []

    def record(
        conn: Any, cursor: Any, sql: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        if executemany:
            statements.append(Statement(sql, tuple(tuple(p) for p in parameters), many=True))
        else:
            statements.append(Statement(sql, tuple(parameters or ())))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


class _RollBack(Exception):
    pass


async def replay(
    conn: asyncpg.Connection, statements: Sequence[Statement], *, roll_back: bool = False
) -> None:
    """The statements in one transaction, as the request's session runs them; rolled back at
    the end when they write (so they can run again on the same rows)."""
    with contextlib.suppress(_RollBack):
        async with conn.transaction():
            for statement in statements:
                if statement.many:
                    await conn.executemany(statement.sql, statement.parameters)
                else:
                    await conn.fetch(statement.sql, *statement.parameters)
            if roll_back:
                raise _RollBack


def statements_label(statements: Sequence[Statement]) -> str:
    return f"the same {len(statements)} SQL statement{'s' * (len(statements) != 1)}, raw asyncpg"


async def read_figures(
    client: httpx.AsyncClient,
    app: Any,
    conn: asyncpg.Connection,
    name: str,
    url: str,
    headers: dict[str, str],
    n: int,
) -> list[Figure]:
    """p50 and p95 of `n` GETs of `url`, beside the same SQL through `conn` as many times."""
    with recorded_statements(app.state.engine) as statements:
        response = await client.get(url, headers=headers)
    assert response.status_code == 200, response.text
    for _ in range(5):  # warm both: plans, prepared statements, caches
        await client.get(url, headers=headers)
        await replay(conn, statements)
    http, raw = [], []
    for _ in range(n):  # interleaved, so a neighbour's load falls on both alike
        started = time.perf_counter()
        response = await client.get(url, headers=headers)
        http.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
        started = time.perf_counter()
        await replay(conn, statements)
        raw.append((time.perf_counter() - started) * 1000)
    return p50_p95_figures(name, http, raw, statements_label(statements))


# --- the HTTP floor: a trivial route of the same app ----------------------------------------


async def _bare_asgi(scope: Any, receive: Any, send: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": b'{"status":"ok"}'})


async def http_floor_figures(client: httpx.AsyncClient, n: int) -> list[Figure]:
    """GET /healthz of the app (its middleware, no database) beside a bare ASGI callable
    through the same kind of transport: what any request of this app costs at least."""
    bare = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=_bare_asgi), base_url=client.base_url
    )
    async with bare:
        for _ in range(5):
            await client.get("/healthz")
            await bare.get("/healthz")
        app_samples, bare_samples = [], []
        for _ in range(n):
            started = time.perf_counter()
            response = await client.get("/healthz")
            app_samples.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text
            started = time.perf_counter()
            await bare.get("/healthz")
            bare_samples.append((time.perf_counter() - started) * 1000)
    return p50_p95_figures(
        "GET /healthz (trivial route)", app_samples, bare_samples, "a bare ASGI app, same transport"
    )


# --- the write floor: raw transactions of a comparable shape --------------------------------


@dataclass(frozen=True)
class WriteShape:
    """How many statements of each kind one write request sent, the floor's template."""

    reads: int
    updates: int
    inserts: int

    @classmethod
    def of(cls, statements: Sequence[Statement]) -> WriteShape:
        verbs = [s.sql.lstrip().split(None, 1)[0].upper() for s in statements if s.sql.strip()]
        return cls(
            reads=max(0, verbs.count("SELECT") - 1),  # one is the floor's locking read
            updates=verbs.count("UPDATE"),
            inserts=verbs.count("INSERT"),
        )

    def __str__(self) -> str:
        def n(count: int, word: str) -> str:
            return f"{count} {word}{'s' * (count != 1)}"

        return (
            f"1 locked read + {n(self.reads, 'read')}, {n(self.updates, 'update')}, "
            f"{n(self.inserts, 'insert')}"
        )


async def write_floor(
    url: str, count: int, concurrency: int, shape: WriteShape
) -> tuple[float, str]:
    """Transactions per second of `count` raw asyncpg transactions by `concurrency` connections,
    each of the request's shape: one row locked (SELECT ... FOR UPDATE), `shape.reads` reads by
    primary key, `shape.updates` updates of that row and `shape.inserts` inserts of a row with
    a small JSON document. On scratch tables created and dropped here: the service's tables are
    left as they were. Returns the rate and what it measured."""
    dsn = asyncpg_dsn(url)
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(
            "CREATE TABLE bench_floor_rows (id int PRIMARY KEY, n int NOT NULL, data jsonb);"
            "CREATE TABLE bench_floor_log (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
            " row_id int NOT NULL, data jsonb NOT NULL, at timestamptz NOT NULL DEFAULT now());"
            "CREATE INDEX ON bench_floor_log (row_id)"
        )
        await admin.execute(
            "INSERT INTO bench_floor_rows SELECT g, 0, '{}' FROM generate_series(0, $1) g",
            count - 1,
        )
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(count):
            queue.put_nowait(i)

        async def worker(conn: asyncpg.Connection) -> None:
            while not queue.empty():
                i = queue.get_nowait()
                async with conn.transaction():
                    await conn.fetchrow(
                        "SELECT id, n, data FROM bench_floor_rows WHERE id = $1 FOR UPDATE", i
                    )
                    for _ in range(shape.reads):
                        await conn.fetchrow(
                            "SELECT id, n, data FROM bench_floor_rows WHERE id = $1", i
                        )
                    for _ in range(shape.updates):
                        await conn.execute(
                            "UPDATE bench_floor_rows SET n = n + 1, data = $2 WHERE id = $1",
                            i,
                            '{"status": "changed"}',
                        )
                    for k in range(shape.inserts):
                        await conn.execute(
                            "INSERT INTO bench_floor_log (row_id, data) VALUES ($1, $2)",
                            i,
                            f'{{"row": {i}, "n": {k}, "event": "{uuid.uuid4()}"}}',
                        )

        # Connections are opened before the clock starts, as the app's pool is warm.
        connections = [await asyncpg.connect(dsn) for _ in range(concurrency)]
        try:
            started = time.perf_counter()
            await asyncio.gather(*(worker(conn) for conn in connections))
            seconds = time.perf_counter() - started
        finally:
            for conn in connections:
                await conn.close()
    finally:
        await admin.execute("DROP TABLE IF EXISTS bench_floor_rows, bench_floor_log")
        await admin.close()
    label = f"{count} raw asyncpg transactions ({shape}), {concurrency} connections"
    return count / seconds, label
