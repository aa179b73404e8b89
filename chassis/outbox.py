"""The transactional outbox and its relay.

A service writes its events into the ``outbox`` table in the same transaction as the state
change (``OutboxPublisher.publish``), so both commit or neither does. A statement trigger calls
``pg_notify`` on insert; PostgreSQL delivers the notification at commit, which wakes the relay
at once. The relay publishes unsent rows in id order and marks them sent only after the broker
acknowledged them; a slow poll is only the fallback for a missed notification. Each record
carries the Kafka header ``content-type: application/cloudevents+json`` (the CloudEvents Kafka
binding, structured mode), unless its row's headers name another type.

Exactly one relay per service is active: the one holding a session advisory lock. Others wait
as standbys and take over when its connection goes.

Per-aggregate order: ``publish`` takes a transaction advisory lock on the aggregate id before
inserting, so two transactions writing events for the same aggregate get outbox ids in commit
order; the relay sends in id order and the Kafka key (the aggregate id) keeps them on one
partition.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence

import asyncpg
from aiokafka import AIOKafkaProducer
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    LargeBinary,
    MetaData,
    Table,
    Text,
    TextClause,
    bindparam,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.consistency import record_published
from chassis.database import copy_records
from chassis.events import CloudEvent, EventCatalog, EventData
from chassis.kafka import CLOUDEVENTS_CONTENT_TYPE, CONTENT_TYPE_HEADER
from chassis.observability import traceparent_var
from chassis.settings import events_topic

log = logging.getLogger("chassis.outbox")

NOTIFY_CHANNEL = "chorus_outbox"
# Namespace of the per-aggregate transaction lock (two-key advisory locks; the relay's
# single-key lock lives in a separate space).
AGGREGATE_LOCK_NAMESPACE = 0x0B0C
SENT_RETENTION = "1 day"


def outbox_table(metadata: MetaData) -> Table:
    return Table(
        "outbox",
        metadata,
        Column("id", BigInteger, Identity(always=True), primary_key=True),
        Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
        Column("topic", Text, nullable=False),
        Column("key", Text, nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("headers", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("sent_at", DateTime(timezone=True)),
        Index("ix_outbox_unsent", "id", postgresql_where=text("sent_at IS NULL")),
    )


def relay_lock_id(service_name: str) -> int:
    """A stable advisory lock id per service (crc32 is stable across processes, hash() is not)."""
    return zlib.crc32(f"chorus-outbox-relay:{service_name}".encode())


def asyncpg_dsn(database_url: str) -> str:
    """The SQLAlchemy URL as a plain libpq-style DSN for a raw asyncpg connection."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class OutboxPublisher:
    """Writes a service's events into its outbox, inside the caller's transaction. It takes
    only the event models its catalog declares (``chassis.events.EventCatalog``)."""

    def __init__(self, catalog: EventCatalog, table: Table) -> None:
        self.catalog = catalog
        self.service_name = catalog.service
        self.table = table
        self.topic = events_topic(catalog.service)
        self._statement: TextClause | None = None

    async def publish(
        self,
        session: AsyncSession,
        data: EventData,
        *,
        subject: str,
        traceparent: str | None = None,
    ) -> CloudEvent:
        # The request's trace context travels on with the event it caused.
        event = self.catalog.envelope(subject, data, traceparent or traceparent_var.get())
        await self.enqueue(
            session, event_id=event.id, topic=self.topic, key=subject, payload=event.to_json()
        )
        record_published(session, [(event.type, event.id)])
        return event

    async def publish_many(
        self, session: AsyncSession, events: Sequence[tuple[str, EventData]]
    ) -> list[CloudEvent]:
        """Many events, (subject, data) each, in one COPY: the same envelopes and outbox
        rows as `publish`, without its per-aggregate lock (thousands of those would exhaust
        PostgreSQL's lock table). So the caller must hold its aggregates itself: rows it
        created in this transaction, or rows it locked FOR UPDATE, as a bulk import does."""
        traceparent = traceparent_var.get()
        built = [self.catalog.envelope(subject, data, traceparent) for subject, data in events]
        await copy_records(
            session,
            self.table.name,
            ("event_id", "topic", "key", "payload"),
            [(event.id, self.topic, event.subject, event.to_json()) for event in built],
        )
        record_published(session, [(event.type, event.id) for event in built])
        return built

    async def enqueue(
        self,
        session: AsyncSession,
        *,
        event_id: uuid.UUID,
        topic: str,
        key: str,
        payload: bytes,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Queue raw bytes for a topic; used for events and for dead letters."""
        await session.execute(
            self._enqueue_statement,
            {
                "namespace": AGGREGATE_LOCK_NAMESPACE,
                "event_id": event_id,
                "topic": topic,
                "key": key,
                "payload": payload,
                "headers": dict(headers or {}),
            },
        )

    @property
    def _enqueue_statement(self) -> TextClause:
        if self._statement is None:
            # One round trip: the MATERIALIZED CTE takes the aggregate's lock before the row,
            # and so its identity value, is made.
            self._statement = text(
                "WITH locked AS MATERIALIZED ("
                " SELECT pg_advisory_xact_lock(:namespace, hashtext(:key)))"
                f" INSERT INTO {self.table.name} (event_id, topic, key, payload, headers)"
                " SELECT :event_id, :topic, :key, :payload, :headers FROM locked"
            ).bindparams(
                bindparam("event_id", type_=UUID(as_uuid=True)),
                bindparam("payload", type_=LargeBinary),
                bindparam("headers", type_=JSONB),
            )
        return self._statement


RelayHook = Callable[[Sequence[int]], Awaitable[None]]


class OutboxRelay:
    """Moves committed outbox rows to the broker. Run one per process; one per service is active."""

    def __init__(
        self,
        *,
        service_name: str,
        database_url: str,
        producer: AIOKafkaProducer,
        batch_size: int = 500,
        poll_interval: float = 5.0,
        standby_retry: float = 2.0,
        after_publish: RelayHook | None = None,
        on_sent: Callable[[int], None] | None = None,
    ) -> None:
        self.service_name = service_name
        self.dsn = asyncpg_dsn(database_url)
        self.producer = producer
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.standby_retry = standby_retry
        self.lock_id = relay_lock_id(service_name)
        # Test seam: runs after the broker acknowledged a batch, before the rows are marked sent.
        self.after_publish = after_publish
        self.on_sent = on_sent
        self.is_leader = False
        self._wake = asyncio.Event()
        self._last_cleanup = 0.0

    async def run(self) -> None:
        while True:
            try:
                await self._run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay of %s failed; restarting", self.service_name)
            self.is_leader = False
            await asyncio.sleep(self.standby_retry)

    async def _connect(self) -> asyncpg.Connection:
        # Cancelling asyncpg mid-handshake leaves a failed future nobody reads; let the
        # handshake finish, then close, so a quick shutdown stays clean.
        connecting = asyncio.ensure_future(asyncpg.connect(self.dsn))
        try:
            return await asyncio.shield(connecting)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await (await connecting).close(timeout=2)
            raise

    async def _run_once(self) -> None:
        conn = await self._connect()
        try:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", self.lock_id):
                return  # another relay is active; try again later
            self.is_leader = True
            log.info("outbox relay of %s is active", self.service_name)
            await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _conn: lost.set())
            while not lost.is_set():
                self._wake.clear()
                sent = await self._relay_batch(conn)
                if sent >= self.batch_size:
                    continue  # more are waiting
                await self._maybe_cleanup(conn)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)
        finally:
            self.is_leader = False
            # Closing the connection releases the advisory lock for a standby.
            with contextlib.suppress(Exception):
                await asyncio.shield(conn.close(timeout=2))

    def _on_notify(self, *_args: object) -> None:
        self._wake.set()

    async def _relay_batch(self, conn: asyncpg.Connection) -> int:
        rows = await conn.fetch(
            "SELECT id, topic, key, payload, headers FROM outbox"
            " WHERE sent_at IS NULL ORDER BY id LIMIT $1",
            self.batch_size,
        )
        if not rows:
            return 0
        acks = []
        for row in rows:
            # Every row is a CloudEvent in structured mode (an event, or the dead letter of
            # one) unless it says otherwise, as the dead letter of an unreadable record does.
            headers = {CONTENT_TYPE_HEADER: CLOUDEVENTS_CONTENT_TYPE, **json.loads(row["headers"])}
            acks.append(
                await self.producer.send(
                    row["topic"],
                    value=row["payload"],
                    key=row["key"].encode(),
                    headers=[(k, str(v).encode()) for k, v in headers.items()],
                )
            )
        # Every record acknowledged before any row is marked: a crash in between re-sends
        # (at least once), and consumers drop the duplicate by event id.
        await asyncio.gather(*acks)
        ids = [row["id"] for row in rows]
        if self.after_publish is not None:
            await self.after_publish(ids)
        await conn.execute("UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[])", ids)
        if self.on_sent is not None:
            self.on_sent(len(ids))
        return len(ids)

    async def _maybe_cleanup(self, conn: asyncpg.Connection) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._last_cleanup < 600:
            return
        self._last_cleanup = now
        await conn.execute(
            f"DELETE FROM outbox WHERE sent_at < now() - interval '{SENT_RETENTION}'"
        )
