"""Outbox -> broker -> consumer inbox, on the embedded stack (the same PostgreSQL and broker
as `chorus dev`, durable settings), beside a bare pipeline measured in the same run.

Two processes, as in production: the producing service (request handlers writing a state change
and its event in one transaction, plus its outbox relay) and the consuming service (the
idempotent consumer writing its inbox row and the effect). Latency is from the producer's
commit to the consumer's commit, both read from the same wall clock.

The floor is the same pipeline with no chassis, on its own databases and topic, run after the
chassis one with the same phases: a bare loop of asyncpg transactions (the same UPDATE and an
INSERT into the same outbox table, whose trigger NOTIFYs), a relay woken by that NOTIFY that
sends with aiokafka (the same producer settings) and marks the rows sent, and an aiokafka
consumer inserting the inbox rows and effects of a batch in one transaction before it commits
its offsets.

Phases (each waits until what it wrote has reached the consumer before the next starts):
  paced:   events offered at a steady rate; p50 / p99 / max commit->effect latency
  burst:   events written as fast as the writers can; events/s end to end, and of the writers
  backlog: events written while the relay is stopped, then drained; events/s of the pipeline
           alone (outbox -> broker -> inbox)
A phase that has not drained when its events stop arriving (--stall seconds without one) says
how many of its events are still unsent in the outbox and how many were sent but not yet
consumed; none of them is "lost".

--quick (or CHORUS_BENCH_QUICK=1) runs smaller sizes. Run as a module: python -m bench.outbox
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import statistics
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import Column, Integer, MetaData, Table, Text, insert, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncSession

from bench.benchkit import QUICK, Figure, embedded_stack, print_figures, quiet_logs
from chassis.consumer import IdempotentConsumer, inbox_table
from chassis.database import create_engine, create_session_factory
from chassis.events import CloudEvent, EventCatalog, EventData
from chassis.kafka import create_producer, ensure_topics
from chassis.migrations import NOTIFY_FUNCTION_SQL, NOTIFY_TRIGGER_SQL
from chassis.outbox import NOTIFY_CHANNEL, OutboxPublisher, OutboxRelay, asyncpg_dsn, outbox_table
from chassis.settings import events_topic

AGGREGATES = 100
WRITER_POOL = 20


@dataclass(frozen=True)
class Pipeline:
    """One of the two pipelines: `chassis` (the code under test) or `bare` (its floor)."""

    kind: str
    producer: str  # the producing service's name: its database and topic
    consumer: str

    @property
    def topic(self) -> str:
        return events_topic(self.producer)

    @property
    def event_type(self) -> str:
        return f"chorus.{self.producer}.thing.changed"


CHASSIS = Pipeline("chassis", "benchsource", "benchsink")
BARE = Pipeline("bare", "benchfloor", "benchfloorsink")


class ThingChanged(EventData):
    """The bench's one event: the i-th write."""

    published_as = "thing.changed"
    i: int


def tables() -> tuple[MetaData, Table, Table, Table]:
    metadata = MetaData()
    outbox = outbox_table(metadata)
    inbox = inbox_table(metadata)
    effects = Table(
        "effects",
        metadata,
        Column("seq", Integer, primary_key=True, autoincrement=True),
        Column("event_id", UUID(as_uuid=True), nullable=False),
        Column("subject", Text, nullable=False),
    )
    Table("things", metadata, Column("id", Text, primary_key=True), Column("n", Integer))
    return metadata, outbox, inbox, effects


async def create_schema(url: str) -> None:
    metadata, *_ = tables()
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.execute(text(NOTIFY_FUNCTION_SQL))
        await conn.execute(text(NOTIFY_TRIGGER_SQL))
        await conn.execute(
            text("INSERT INTO things (id, n) SELECT 'agg-' || g, 0 FROM generate_series(0, :n) g"),
            {"n": AGGREGATES - 1},
        )
    await engine.dispose()


def kafka_producer(bootstrap: str, client_id: str) -> AIOKafkaProducer:
    """The producer settings of chassis.kafka.create_producer, spelled out for the bare relay."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        acks="all",
        enable_idempotence=False,
        linger_ms=0,
        request_timeout_ms=15_000,
    )


# --- the producing service (child process) -------------------------------------------------


def producer_main(
    pipeline: Pipeline, url: str, bootstrap: str, phases: list[dict[str, Any]], out: Any, go: Any
) -> None:
    quiet_logs()
    asyncio.run(_producer(pipeline, url, bootstrap, phases, out, go))


class ChassisWriter:
    """The request handlers and relay of a service: a session, OutboxPublisher, OutboxRelay."""

    def __init__(self, pipeline: Pipeline, url: str, bootstrap: str) -> None:
        _, outbox, _, _ = tables()
        self.url = url
        self.pipeline = pipeline
        self.engine = create_engine(url, pool_size=WRITER_POOL)
        self.sessions = create_session_factory(self.engine)
        self.publisher = OutboxPublisher(EventCatalog(pipeline.producer, [ThingChanged]), outbox)
        self.kafka = create_producer(
            bootstrap, client_id=pipeline.producer, enable_idempotence=False
        )

    async def start(self) -> None:
        await self.kafka.start()

    async def write_one(self, i: int) -> tuple[str, float]:
        subject = f"agg-{i % AGGREGATES}"
        async with self.sessions() as session, session.begin():
            await session.execute(
                text("UPDATE things SET n = n + 1 WHERE id = :id"), {"id": subject}
            )
            event = await self.publisher.publish(session, ThingChanged(i=i), subject=subject)
        return str(event.id), time.time()

    async def start_relay(self) -> asyncio.Task[None]:
        relay = OutboxRelay(
            service_name=self.pipeline.producer, database_url=self.url, producer=self.kafka
        )
        task = asyncio.create_task(relay.run())
        while not relay.is_leader:  # noqa: ASYNC110 - the relay exposes a flag, not an event
            await asyncio.sleep(0.01)
        return task

    async def stop(self) -> None:
        await self.kafka.stop()
        await self.engine.dispose()


class BareWriter:
    """The floor: raw asyncpg transactions and a NOTIFY-woken relay, no chassis."""

    def __init__(self, pipeline: Pipeline, url: str, bootstrap: str) -> None:
        self.pipeline = pipeline
        self.dsn = asyncpg_dsn(url)
        self.kafka = kafka_producer(bootstrap, pipeline.producer)
        self.pool: asyncpg.Pool | None = None

    async def start(self) -> None:
        self.pool = await asyncpg.create_pool(self.dsn, min_size=WRITER_POOL, max_size=WRITER_POOL)
        await self.kafka.start()

    async def write_one(self, i: int) -> tuple[str, float]:
        assert self.pool is not None
        subject = f"agg-{i % AGGREGATES}"
        event_id = uuid.uuid4()
        payload = json.dumps(
            {
                "specversion": "1.0",
                "id": str(event_id),
                "source": f"/services/{self.pipeline.producer}",
                "type": self.pipeline.event_type,
                "subject": subject,
                "time": datetime.now(UTC).isoformat(),
                "data": {"i": i},
            }
        ).encode()
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("UPDATE things SET n = n + 1 WHERE id = $1", subject)
            await conn.execute(
                "INSERT INTO outbox (event_id, topic, key, payload) VALUES ($1, $2, $3, $4)",
                event_id,
                self.pipeline.topic,
                subject,
                payload,
            )
        return str(event_id), time.time()

    async def start_relay(self) -> asyncio.Task[None]:
        ready = asyncio.Event()
        task = asyncio.create_task(self._relay(ready))
        await ready.wait()
        return task

    async def _relay(self, ready: asyncio.Event) -> None:
        conn = await asyncpg.connect(self.dsn)
        wake = asyncio.Event()
        try:
            await conn.add_listener(NOTIFY_CHANNEL, lambda *_: wake.set())
            ready.set()
            while True:
                wake.clear()
                rows = await conn.fetch(
                    "SELECT id, topic, key, payload FROM outbox WHERE sent_at IS NULL"
                    " ORDER BY id LIMIT 500"
                )
                if rows:
                    acks = [
                        await self.kafka.send(r["topic"], value=r["payload"], key=r["key"].encode())
                        for r in rows
                    ]
                    await asyncio.gather(*acks)
                    await conn.execute(
                        "UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[])",
                        [r["id"] for r in rows],
                    )
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), 5.0)
        finally:
            await asyncio.shield(conn.close(timeout=2))

    async def stop(self) -> None:
        await self.kafka.stop()
        assert self.pool is not None
        await self.pool.close()


async def _producer(
    pipeline: Pipeline,
    url: str,
    bootstrap: str,
    phases: list[dict[str, Any]],
    out: Any,
    go: Any,
) -> None:
    writer = (ChassisWriter if pipeline.kind == "chassis" else BareWriter)(pipeline, url, bootstrap)
    await writer.start()
    relay_task = await writer.start_relay()
    for phase in phases:
        if phase.get("relay_paused"):  # a backlog builds up, then the pipeline drains it
            relay_task.cancel()
            await asyncio.gather(relay_task, return_exceptions=True)
        commits: dict[str, float] = {}

        async def write_one(i: int, commits: dict[str, float] = commits) -> None:
            event_id, at = await writer.write_one(i)
            commits[event_id] = at

        started = time.time()
        if phase["rate"]:  # paced: one event every 1/rate seconds
            interval = 1.0 / phase["rate"]
            pending: set[asyncio.Task[None]] = set()
            for i in range(phase["count"]):
                delay = started + i * interval - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                pending.add(asyncio.create_task(write_one(i)))
                pending = {t for t in pending if not t.done()}
            await asyncio.gather(*pending)
        else:  # burst: `writers` concurrent writers, as fast as they go
            numbers = iter(range(phase["count"]))

            async def one_writer(numbers: Any = numbers) -> None:
                for i in numbers:
                    await write_one(i)

            await asyncio.gather(*(one_writer() for _ in range(phase["writers"])))
        result: dict[str, Any] = {"commits": commits, "write_seconds": time.time() - started}
        if phase.get("relay_paused"):
            result["relay_started"] = time.time()
            relay_task = await writer.start_relay()
        out.put(result)
        # The consumer says when this phase has drained (or stalled): phases do not overlap.
        await asyncio.to_thread(go.get)
    relay_task.cancel()
    await asyncio.gather(relay_task, return_exceptions=True)
    await writer.stop()


# --- the consuming service (this process) ---------------------------------------------------


async def chassis_consumer(
    pipeline: Pipeline, url: str, bootstrap: str, effect_times: dict[str, float]
) -> tuple[asyncio.Task[None], Any]:
    _, outbox, inbox, effects = tables()
    engine = create_engine(url)
    sessions = create_session_factory(engine)

    async def handle(session: AsyncSession, event: CloudEvent) -> None:
        await session.execute(insert(effects).values(event_id=event.id, subject=event.subject))

    def committed(events: Any) -> None:
        now = time.time()
        for event in events:
            effect_times[str(event.id)] = now

    consumer = IdempotentConsumer(
        name=f"{pipeline.consumer}.bench",
        topics=[pipeline.topic],
        handlers={pipeline.event_type: handle},
        session_factory=sessions,
        inbox=inbox,
        publisher=OutboxPublisher(EventCatalog(pipeline.consumer, []), outbox),
        dead_letter_topic=f"chorus.{pipeline.consumer}.dlq",
        bootstrap_servers=bootstrap,
        on_committed=committed,
    )
    task = asyncio.create_task(consumer.run())
    await asyncio.wait_for(consumer.assigned.wait(), 60)
    return task, engine.dispose


async def bare_consumer(
    pipeline: Pipeline, url: str, bootstrap: str, effect_times: dict[str, float]
) -> tuple[asyncio.Task[None], Any]:
    """The floor: a batch's inbox rows (skipping events already there) and effects in one
    transaction, then the offsets; the settings of chassis.kafka.create_consumer."""
    pool = await asyncpg.create_pool(asyncpg_dsn(url), min_size=1, max_size=1)
    kafka = AIOKafkaConsumer(
        pipeline.topic,
        bootstrap_servers=bootstrap,
        group_id=f"{pipeline.consumer}.bench",
        client_id=pipeline.consumer,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=20,
        max_poll_records=500,
        isolation_level="read_committed",
    )
    await kafka.start()
    assigned = asyncio.Event()

    async def run() -> None:
        try:
            while True:
                batch = await kafka.getmany(timeout_ms=1000)
                if kafka.assignment():
                    assigned.set()
                if not batch:
                    continue
                events = [json.loads(r.value) for rs in batch.values() for r in rs if r.value]
                async with pool.acquire() as conn, conn.transaction():
                    new = await conn.fetch(
                        "INSERT INTO inbox (consumer, event_id, event_type)"
                        " SELECT $1, e, $2 FROM unnest($3::uuid[]) e"
                        " ON CONFLICT DO NOTHING RETURNING event_id",
                        pipeline.consumer,
                        pipeline.event_type,
                        [e["id"] for e in events],
                    )
                    fresh = {str(r["event_id"]) for r in new}
                    await conn.executemany(
                        "INSERT INTO effects (event_id, subject) VALUES ($1, $2)",
                        [(e["id"], e["subject"]) for e in events if e["id"] in fresh],
                    )
                await kafka.commit({tp: rs[-1].offset + 1 for tp, rs in batch.items()})
                now = time.time()
                for e in events:
                    effect_times[e["id"]] = now
        finally:
            await kafka.stop()
            await pool.close()

    task = asyncio.create_task(run())
    await asyncio.wait_for(assigned.wait(), 60)

    async def nothing() -> None:
        pass

    return task, nothing


@dataclass
class PhaseResult:
    name: str
    count: int
    commits: dict[str, float]
    write_seconds: float
    relay_started: float | None
    latencies: list[float] = field(default_factory=list)
    last_effect: float = 0.0
    unsent: int = 0  # still in the outbox when the phase stopped waiting
    in_flight: int = 0  # sent, not yet consumed

    @property
    def drained(self) -> bool:
        return not self.unsent and not self.in_flight

    def rate(self) -> float:
        """Events per second end to end (backlog: from the relay's start)."""
        since = self.relay_started or min(self.commits.values())
        return len(self.latencies) / max(self.last_effect - since, 1e-9)


async def wait_drained(
    commits: dict[str, float], effect_times: dict[str, float], stall: float
) -> None:
    """Until every event of `commits` has reached the consumer, or none arrived for `stall`
    seconds."""
    seen, last_progress = -1, time.monotonic()
    while True:
        arrived = sum(1 for i in commits if i in effect_times)
        if arrived == len(commits):
            return
        if arrived != seen:
            seen, last_progress = arrived, time.monotonic()
        elif time.monotonic() - last_progress > stall:
            return
        await asyncio.sleep(0.05)


async def run_pipeline(
    pipeline: Pipeline,
    producer_url: str,
    consumer_url: str,
    bootstrap: str,
    phases: list[dict[str, Any]],
    stall: float,
) -> list[PhaseResult]:
    effect_times: dict[str, float] = {}
    start_consumer = chassis_consumer if pipeline.kind == "chassis" else bare_consumer
    consumer_task, close = await start_consumer(pipeline, consumer_url, bootstrap, effect_times)
    context = mp.get_context("spawn")
    out: Any = context.Queue()
    go: Any = context.Queue()
    child = context.Process(
        target=producer_main, args=(pipeline, producer_url, bootstrap, phases, out, go)
    )
    child.start()
    results = []
    producer_db = await asyncpg.connect(asyncpg_dsn(producer_url))
    try:
        for phase in phases:
            raw = await asyncio.to_thread(out.get, True, 900)
            await wait_drained(raw["commits"], effect_times, stall)
            result = PhaseResult(
                phase["name"],
                phase["count"],
                raw["commits"],
                raw["write_seconds"],
                raw.get("relay_started"),
            )
            result.latencies = sorted(
                (effect_times[i] - t) * 1000 for i, t in result.commits.items() if i in effect_times
            )
            arrived = [effect_times[i] for i in result.commits if i in effect_times]
            result.last_effect = max(arrived, default=0.0)
            missing = [uuid.UUID(i) for i in result.commits if i not in effect_times]
            if missing:
                result.unsent = await producer_db.fetchval(
                    "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND event_id = ANY($1)",
                    missing,
                )
                result.in_flight = len(missing) - result.unsent
            results.append(result)
            go.put(True)
    finally:
        await producer_db.close()
        await asyncio.to_thread(child.join, 60)
        consumer_task.cancel()
        await asyncio.gather(consumer_task, return_exceptions=True)
        await close()
    return results


# --- the run --------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> None:
    quiet_logs()
    phases = [
        {"name": "warm-up", "rate": 200, "count": 200},
        {"name": "paced", "rate": args.rate, "count": int(args.rate * args.seconds)},
        {"name": "burst", "rate": 0, "count": args.burst, "writers": args.writers},
        {
            "name": "backlog",
            "rate": 0,
            "count": args.burst,
            "writers": args.writers,
            "relay_paused": True,
        },
    ]
    async with embedded_stack(durable=not args.no_fsync) as stack:
        outcomes = {}
        for pipeline in (CHASSIS, BARE):
            producer_url = stack.postgres.url(f"{pipeline.producer}_{uuid.uuid4().hex[:6]}")
            consumer_url = stack.postgres.url(f"{pipeline.consumer}_{uuid.uuid4().hex[:6]}")
            for url in (producer_url, consumer_url):
                stack.postgres.create_database(url.rsplit("/", 1)[1])
                await create_schema(url)
            await ensure_topics(
                stack.broker.bootstrap_servers,
                [pipeline.topic, f"chorus.{pipeline.consumer}.dlq"],
                partitions=6,
            )
            outcomes[pipeline.kind] = await run_pipeline(
                pipeline,
                producer_url,
                consumer_url,
                stack.broker.bootstrap_servers,
                phases,
                args.stall,
            )
    report(args, phases, outcomes["chassis"], outcomes["bare"])


def report(
    args: argparse.Namespace,
    phases: list[dict[str, Any]],
    chassis: list[PhaseResult],
    bare: list[PhaseResult],
) -> None:
    floor_label = "bare asyncpg + NOTIFY relay + aiokafka + inbox insert, no chassis"
    figures: list[Figure] = []
    notes: list[str] = []
    for phase, ours, floor in zip(phases, chassis, bare, strict=True):
        if phase["name"] == "warm-up":
            continue
        for which, result in (("chassis", ours), ("floor", floor)):
            if not result.drained:
                notes.append(
                    f"{phase['name']} ({which}): {len(result.latencies)} of {result.count} events"
                    f" reached the consumer; {result.unsent} still unsent in the outbox,"
                    f" {result.in_flight} sent and not yet consumed after {args.stall:.0f} s"
                    " without progress"
                )
        if not ours.latencies or not floor.latencies:
            continue
        if phase.get("relay_paused"):
            figures.append(
                Figure(
                    f"backlog of {phase['count']}: drain rate",
                    ours.rate(),
                    "events/s",
                    floor.rate(),
                    floor_label,
                )
            )
            continue
        label = (
            f"{phase['name']} ({phase['rate']}/s)"
            if phase["rate"]
            else f"{phase['name']} ({phase['count']}, {phase['writers']} writers)"
        )
        if phase["rate"]:
            for name, pick in (
                ("p50", statistics.median),
                ("p99", lambda xs: xs[max(0, int(len(xs) * 0.99) - 1)]),
                ("max", lambda xs: xs[-1]),
            ):
                figures.append(
                    Figure(
                        f"{label}: commit->effect {name}",
                        pick(ours.latencies),
                        "ms",
                        pick(floor.latencies),
                        floor_label,
                    )
                )
        else:
            figures.append(
                Figure(f"{label}: end to end", ours.rate(), "events/s", floor.rate(), floor_label)
            )
            figures.append(
                Figure(
                    f"{label}: writers alone",
                    ours.count / ours.write_seconds,
                    "events/s",
                    floor.count / floor.write_seconds,
                    "bare asyncpg transactions (UPDATE + INSERT into the outbox)",
                )
            )
    print_figures(
        "outbox -> broker -> inbox on the embedded stack "
        f"({'fsync off' if args.no_fsync else 'durable'}, 2 processes)",
        figures,
        notes or ["every phase drained: every event written reached the consumer"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to check it runs")
    parser.add_argument("--rate", type=int, default=300, help="paced phase, events/s")
    parser.add_argument("--seconds", type=float, default=None, help="paced phase length (10)")
    parser.add_argument("--burst", type=int, default=None, help="burst phase, events (20,000)")
    parser.add_argument("--writers", type=int, default=32, help="burst phase, concurrent writers")
    parser.add_argument(
        "--stall", type=float, default=30.0, help="seconds without progress before a phase stops"
    )
    parser.add_argument("--no-fsync", action="store_true", help="PostgreSQL without fsync")
    args = parser.parse_args()
    quick = args.quick or QUICK
    args.seconds = args.seconds or (3.0 if quick else 10.0)
    args.burst = args.burst or (2_000 if quick else 20_000)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
