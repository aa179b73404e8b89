"""A miniature pair of services for the messaging tests: real databases, real broker.

"producer" owns `things` and writes events through its outbox; "consumer" records each event's
effect in `effects`. Each pair gets unique service names, so topics and groups never mix
between tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import ConfigDict
from sqlalchemy import Column, Integer, MetaData, Table, Text, func, insert, select, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from chassis.consumer import Handler, IdempotentConsumer, inbox_table
from chassis.database import create_engine, create_session_factory
from chassis.events import CloudEvent, EventCatalog, EventData
from chassis.kafka import create_producer, ensure_topics
from chassis.migrations import NOTIFY_FUNCTION_SQL, NOTIFY_TRIGGER_SQL
from chassis.outbox import OutboxPublisher, OutboxRelay, RelayHook, outbox_table
from chassis.settings import events_topic
from tests.conftest import Infrastructure


class ThingChanged(EventData):
    """A thing of a test service changed; its data is whatever the test gives."""

    model_config = ConfigDict(extra="allow")
    published_as = "thing.changed"


@dataclass
class MiniService:
    name: str
    database_url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    outbox: Table
    inbox: Table
    publisher: OutboxPublisher
    effects: Table
    bootstrap: str
    idempotence: bool
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    relays: list[OutboxRelay] = field(default_factory=list)
    producers: list[AIOKafkaProducer] = field(default_factory=list)

    @property
    def dead_letter_topic(self) -> str:
        return f"chorus.{self.name}.dlq"

    async def start_relay(self, after_publish: RelayHook | None = None) -> asyncio.Task[None]:
        producer = create_producer(
            self.bootstrap, client_id=self.name, enable_idempotence=self.idempotence
        )
        await producer.start()
        self.producers.append(producer)
        relay = OutboxRelay(
            service_name=self.name,
            database_url=self.database_url,
            producer=producer,
            poll_interval=5.0,
            standby_retry=0.2,
            after_publish=after_publish,
        )
        task = asyncio.create_task(relay.run())
        self.tasks.append(task)
        self.relays.append(relay)
        return task

    def consumer(
        self,
        source: str,
        handlers: dict[str, Handler],
        *,
        before_offset_commit: Callable[[], Awaitable[None]] | None = None,
    ) -> IdempotentConsumer:
        return IdempotentConsumer(
            name=f"{self.name}.test",
            topics=[events_topic(source)],
            handlers=handlers,
            session_factory=self.sessions,
            inbox=self.inbox,
            publisher=self.publisher,
            dead_letter_topic=self.dead_letter_topic,
            bootstrap_servers=self.bootstrap,
            max_attempts=2,
            retry_backoff=0.01,
            before_offset_commit=before_offset_commit,
        )

    def run(self, consumer: IdempotentConsumer) -> asyncio.Task[None]:
        task = asyncio.create_task(consumer.run())
        self.tasks.append(task)
        return task

    async def publish(self, session: AsyncSession, subject: str, **data: object) -> CloudEvent:
        return await self.publisher.publish(session, ThingChanged(**data), subject=subject)

    async def effect_rows(self) -> list[dict[str, object]]:
        async with self.sessions() as session:
            rows = await session.execute(select(self.effects).order_by(self.effects.c.seq))
            return [dict(r._mapping) for r in rows]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for producer in self.producers:
            await producer.stop()
        await self.engine.dispose()


def effect_handler(service: MiniService) -> Handler:
    """Records the event as an effect; fails on purpose for events marked poison."""

    async def handle(session: AsyncSession, event: CloudEvent) -> None:
        if event.data.get("poison"):
            raise ValueError(f"cannot digest {event.subject}")
        await session.execute(
            insert(service.effects).values(
                event_id=event.id, subject=event.subject, version=event.data.get("version")
            )
        )

    return handle


EVENT_TYPE_SUFFIX = ".thing.changed"


async def make_service(infrastructure: Infrastructure, role: str) -> MiniService:
    name = f"{role}_{uuid.uuid4().hex[:8]}"
    url = await infrastructure.create_database(name)
    metadata = MetaData()
    outbox = outbox_table(metadata)
    inbox = inbox_table(metadata)
    effects = Table(
        "effects",
        metadata,
        Column("seq", Integer, primary_key=True, autoincrement=True),
        Column("event_id", UUID(as_uuid=True), nullable=False),
        Column("subject", Text, nullable=False),
        Column("version", Integer),
    )
    Table(
        "things",
        metadata,
        Column("id", Text, primary_key=True),
        Column("version", Integer, nullable=False, server_default="0"),
    )
    engine = create_engine(url, pool_size=25)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.execute(text(NOTIFY_FUNCTION_SQL))
        await conn.execute(text(NOTIFY_TRIGGER_SQL))
    await ensure_topics(
        infrastructure.bootstrap_servers,
        [events_topic(name), f"chorus.{name}.dlq"],
        partitions=3,
    )
    return MiniService(
        name=name,
        database_url=url,
        engine=engine,
        sessions=create_session_factory(engine),
        outbox=outbox,
        inbox=inbox,
        publisher=OutboxPublisher(EventCatalog(name, [ThingChanged]), outbox),
        effects=effects,
        bootstrap=infrastructure.bootstrap_servers,
        idempotence=infrastructure.idempotence,
    )


@contextlib.asynccontextmanager
async def service_pair(
    infrastructure: Infrastructure,
) -> AsyncIterator[tuple[MiniService, MiniService]]:
    producer = await make_service(infrastructure, "producer")
    consumer = await make_service(infrastructure, "consumer")
    try:
        yield producer, consumer
    finally:
        await producer.stop()
        await consumer.stop()


async def eventually(
    check: Callable[[], Awaitable[bool]], *, within: float = 40.0, interval: float = 0.05
) -> None:
    """Wait for an effect rather than sleeping: consumer-group joins on the embedded broker take
    seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        if await check():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(interval)


async def read_topic(
    bootstrap: str, topic: str, expected: int, within: float = 20.0
) -> list[tuple[bytes, dict[str, bytes]]]:
    """Every record of a topic from the beginning (no consumer group)."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await reader.start()
    try:
        partitions = reader.partitions_for_topic(topic) or set()
        if not partitions:
            await reader.client.force_metadata_update()  # type: ignore[no-untyped-call]
            partitions = reader.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in partitions]
        reader.assign(tps)
        await reader.seek_to_beginning(*tps)
        found: list[tuple[bytes, dict[str, bytes]]] = []
        deadline = asyncio.get_running_loop().time() + within
        while len(found) < expected and asyncio.get_running_loop().time() < deadline:
            batch = await reader.getmany(timeout_ms=200)
            for records in batch.values():
                found.extend((r.value or b"", dict(r.headers)) for r in records)
        return found
    finally:
        await reader.stop()


async def count(session_factory: async_sessionmaker[AsyncSession], table: Table) -> int:
    async with session_factory() as session:
        return int((await session.execute(select(func.count()).select_from(table))).scalar_one())


@contextlib.contextmanager
def captured_logs(*names: str) -> Iterator[list[logging.LogRecord]]:
    """Every record of these loggers while the block runs (a handler on each: the app's
    configure_logging replaces the root's handlers, so pytest's caplog would miss them)."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect(level=logging.DEBUG)
    loggers = [logging.getLogger(name) for name in names]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield records
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
