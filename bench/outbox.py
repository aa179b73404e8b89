"""Outbox -> broker -> consumer inbox, on the embedded stack (the same PostgreSQL and broker
as `chorus dev`, durable settings).

Two processes, as in production: the producing service (request handlers writing a state change
and its event in one transaction, plus its outbox relay) and the consuming service (the
idempotent consumer writing its inbox row and the effect). Latency is from the producer's
commit to the consumer's commit, both read from the same wall clock.

Prints:
  paced:  events/s offered, p50 / p99 / max latency (target p50 < 20 ms, p99 < 100 ms)
  burst:  events/s end to end for a burst written as fast as the writers can
  backlog: events/s of the pipeline alone (outbox -> broker -> inbox), draining a backlog
           written while the relay was stopped (target >= 2,000 events/s)
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Integer, MetaData, Table, Text, insert, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.consumer import IdempotentConsumer, inbox_table
from chassis.database import create_engine, create_session_factory
from chassis.events import CloudEvent
from chassis.kafka import create_producer, ensure_topics
from chassis.migrations import NOTIFY_FUNCTION_SQL, NOTIFY_TRIGGER_SQL
from chassis.outbox import OutboxPublisher, OutboxRelay, outbox_table
from chassis.settings import events_topic
from chorus.embedded import EmbeddedBroker, EmbeddedPostgres

PRODUCER = "benchsource"
CONSUMER = "benchsink"
AGGREGATES = 100


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


# --- the producing service (child process) -------------------------------------------------


def producer_main(url: str, bootstrap: str, phases: list[dict[str, Any]], out: Any) -> None:
    out.put(asyncio.run(_producer(url, bootstrap, phases)))


async def _producer(url: str, bootstrap: str, phases: list[dict[str, Any]]) -> list[Any]:
    _, outbox, _, _ = tables()
    engine = create_engine(url, pool_size=20)
    sessions = create_session_factory(engine)
    publisher = OutboxPublisher(PRODUCER, outbox)
    kafka = create_producer(bootstrap, client_id=PRODUCER, enable_idempotence=False)
    await kafka.start()

    async def start_relay() -> asyncio.Task[None]:
        relay = OutboxRelay(service_name=PRODUCER, database_url=url, producer=kafka)
        task = asyncio.create_task(relay.run())
        while not relay.is_leader:  # noqa: ASYNC110 - the relay exposes a flag, not an event
            await asyncio.sleep(0.01)
        return task

    relay_task = await start_relay()
    results = []
    for phase in phases:
        if phase.get("relay_paused"):  # a backlog builds up, then the pipeline drains it
            relay_task.cancel()
            await asyncio.gather(relay_task, return_exceptions=True)
        commits: dict[str, float] = {}

        async def write_one(i: int, commits: dict[str, float] = commits) -> None:
            subject = f"agg-{i % AGGREGATES}"
            async with sessions() as session, session.begin():
                await session.execute(
                    text("UPDATE things SET n = n + 1 WHERE id = :id"), {"id": subject}
                )
                event = await publisher.publish(
                    session, aggregate="thing", verb="changed", subject=subject, data={"i": i}
                )
            commits[str(event.id)] = time.time()

        started = time.time()
        if phase["rate"]:  # paced: one event every 1/rate seconds
            interval = 1.0 / phase["rate"]
            pending = set()
            for i in range(phase["count"]):
                target = started + i * interval
                delay = target - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                pending.add(asyncio.create_task(write_one(i)))
                pending = {t for t in pending if not t.done()}
            await asyncio.gather(*pending)
        else:  # burst: `writers` concurrent writers, as fast as they go
            numbers = iter(range(phase["count"]))

            async def writer(numbers: Any = numbers) -> None:
                for i in numbers:
                    await write_one(i)

            await asyncio.gather(*(writer() for _ in range(phase["writers"])))
        result = {"commits": commits, "write_seconds": time.time() - started}
        if phase.get("relay_paused"):
            result["relay_started"] = time.time()
            relay_task = await start_relay()
        results.append(result)
        await asyncio.sleep(1.0)  # let the relay drain before the next phase
    relay_task.cancel()
    await asyncio.gather(relay_task, return_exceptions=True)
    await kafka.stop()
    await engine.dispose()
    return results


# --- the consuming service (this process) ---------------------------------------------------


async def run(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="chorus-bench-"))
    postgres = EmbeddedPostgres(work / "pg" / "data", durable=not args.no_fsync)
    broker = EmbeddedBroker(work / "broker")
    postgres.start()
    broker.start()
    try:
        producer_url = postgres.url(f"{PRODUCER}_{uuid.uuid4().hex[:6]}")
        consumer_url = postgres.url(f"{CONSUMER}_{uuid.uuid4().hex[:6]}")
        for url in (producer_url, consumer_url):
            postgres.create_database(url.rsplit("/", 1)[1])
            await create_schema(url)
        await ensure_topics(
            broker.bootstrap_servers,
            [events_topic(PRODUCER), f"chorus.{CONSUMER}.dlq"],
            partitions=6,
        )
        await measure(args, producer_url, consumer_url, broker.bootstrap_servers)
    finally:
        broker.stop()
        postgres.stop()
        shutil.rmtree(work, ignore_errors=True)


async def measure(
    args: argparse.Namespace, producer_url: str, consumer_url: str, bootstrap: str
) -> None:
    _, outbox, inbox, effects = tables()
    engine = create_engine(consumer_url)
    sessions = create_session_factory(engine)
    effect_times: dict[str, float] = {}

    async def handle(session: AsyncSession, event: CloudEvent) -> None:
        await session.execute(insert(effects).values(event_id=event.id, subject=event.subject))

    def committed(events: Any) -> None:
        now = time.time()
        for event in events:
            effect_times[str(event.id)] = now

    consumer = IdempotentConsumer(
        name=f"{CONSUMER}.bench",
        topics=[events_topic(PRODUCER)],
        handlers={f"chorus.{PRODUCER}.thing.changed": handle},
        session_factory=sessions,
        inbox=inbox,
        publisher=OutboxPublisher(CONSUMER, outbox),
        dead_letter_topic=f"chorus.{CONSUMER}.dlq",
        bootstrap_servers=bootstrap,
        on_committed=committed,
    )
    consumer_task = asyncio.create_task(consumer.run())
    await asyncio.wait_for(consumer.assigned.wait(), 60)

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
    results_queue: Any = mp.get_context("spawn").Queue()
    child = mp.get_context("spawn").Process(
        target=producer_main, args=(producer_url, bootstrap, phases, results_queue)
    )
    child.start()
    total = sum(p["count"] for p in phases)
    deadline = time.time() + 300
    while len(effect_times) < total and time.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    results = await asyncio.to_thread(results_queue.get, True, 120)
    child.join(30)
    consumer_task.cancel()
    await asyncio.gather(consumer_task, return_exceptions=True)
    await engine.dispose()

    print(
        f"outbox -> broker -> inbox on the embedded stack "
        f"({'fsync off' if args.no_fsync else 'durable'}, 2 processes)"
    )
    for phase, result in zip(phases, results, strict=True):
        commits: dict[str, float] = result["commits"]
        latencies = sorted(
            (effect_times[i] - t) * 1000 for i, t in commits.items() if i in effect_times
        )
        missing = len(commits) - len(latencies)
        if phase["name"] == "warm-up":
            continue
        last_effect = max(effect_times[i] for i in commits if i in effect_times)
        if "relay_started" in result:
            rate = len(latencies) / (last_effect - result["relay_started"])
            print(f"  backlog: {phase['count']} committed events, then the relay starts")
            print(
                f"    outbox -> broker -> inbox  {rate:8.0f} events/s  (lost {missing}; "
                "the pipeline alone, without the writers' own cost)"
            )
            continue
        first_commit = min(commits.values())
        rate = len(latencies) / (last_effect - first_commit)
        p50 = statistics.median(latencies)
        p99 = latencies[int(len(latencies) * 0.99) - 1]
        label = f"{phase['name']}: {phase['count']} events" + (
            f" offered at {phase['rate']}/s"
            if phase["rate"]
            else f" from {phase['writers']} writers"
        )
        print(f"  {label}")
        print(
            f"    end to end      {rate:8.0f} events/s  (writers alone: "
            f"{phase['count'] / result['write_seconds']:.0f}/s)"
        )
        print(
            f"    commit->effect  p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   "
            f"max {latencies[-1]:6.1f} ms   lost {missing}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=int, default=300, help="paced phase, events/s")
    parser.add_argument("--seconds", type=float, default=10.0, help="paced phase length")
    parser.add_argument("--burst", type=int, default=20_000, help="burst phase, events")
    parser.add_argument("--writers", type=int, default=32, help="burst phase, concurrent writers")
    parser.add_argument("--no-fsync", action="store_true", help="PostgreSQL without fsync")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
