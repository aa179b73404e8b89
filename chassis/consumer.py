"""The idempotent consumer.

Each record is handled inside one database transaction together with an insert into the
``inbox`` table keyed by (consumer, event id): a redelivered event finds its row and has no
second effect. Kafka offsets are committed only after that transaction commits, so a crash in
between redelivers, and the inbox absorbs it.

A batch of records shares one transaction (one commit per batch is what makes thousands of
events per second possible); each handler runs in its own savepoint, so a failing event is
retried alone, and after ``max_attempts`` it is sent to the consumer's dead-letter topic (through
the outbox, so the dead letter commits with the batch) with the error in its headers. The
consumer then moves on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from pydantic import ValidationError
from sqlalchemy import (
    Column,
    DateTime,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import UUID, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis.events import CloudEvent
from chassis.kafka import CONTENT_TYPE_HEADER, create_consumer
from chassis.outbox import OutboxPublisher

log = logging.getLogger("chassis.consumer")

Handler = Callable[[AsyncSession, CloudEvent], Awaitable[None]]
CommitHook = Callable[[], Awaitable[None]]
CommittedHook = Callable[[Sequence[CloudEvent]], None]

# A fixed namespace to name records that are not CloudEvents at all (their id is unreadable).
UNREADABLE_NAMESPACE = uuid.UUID("6f1c9a4e-2b51-4a55-9b7e-0c3b7d0e5a21")
MAX_ERROR_HEADER = 2000


def inbox_table(metadata: MetaData) -> Table:
    return Table(
        "inbox",
        metadata,
        Column("consumer", Text, nullable=False),
        Column("event_id", UUID(as_uuid=True), nullable=False),
        Column("event_type", Text, nullable=False),
        Column("status", Text, nullable=False, server_default="processed"),
        Column("error", Text),
        Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("consumer", "event_id"),
    )


@dataclass
class BatchOutcome:
    handled: list[CloudEvent] = field(default_factory=list)
    duplicates: int = 0
    dead_lettered: int = 0


class _Membership(ConsumerRebalanceListener):  # type: ignore[misc]
    """Tells when the consumer has joined its group (any assignment, even an empty one)."""

    def __init__(self, joined: asyncio.Event) -> None:
        self.joined = joined

    async def on_partitions_revoked(self, revoked: object) -> None:
        return None

    async def on_partitions_assigned(self, assigned: object) -> None:
        self.joined.set()


class IdempotentConsumer:
    """Consumes topics for one named consumer (also its consumer group) of one service."""

    def __init__(
        self,
        *,
        name: str,
        topics: Sequence[str],
        handlers: Mapping[str, Handler],
        session_factory: async_sessionmaker[AsyncSession],
        inbox: Table,
        publisher: OutboxPublisher,
        dead_letter_topic: str,
        bootstrap_servers: str,
        max_attempts: int = 3,
        retry_backoff: float = 0.2,
        before_offset_commit: CommitHook | None = None,
        on_committed: CommittedHook | None = None,
    ) -> None:
        self.name = name
        self.topics = list(topics)
        self.handlers = dict(handlers)
        self.session_factory = session_factory
        self.inbox = inbox
        self.publisher = publisher
        self.dead_letter_topic = dead_letter_topic
        self.bootstrap_servers = bootstrap_servers
        self.max_attempts = max_attempts
        self.retry_backoff = retry_backoff
        # Test seam: runs after the batch's transaction committed, before offsets are committed.
        self.before_offset_commit = before_offset_commit
        self.on_committed = on_committed
        self.assigned = asyncio.Event()
        # Set once the consumer is a member of its group, with or without partitions (a replica
        # beyond the partition count has none): from then on, what is published reaches it.
        self.joined = asyncio.Event()
        # Counts since start, for metrics and for tests that must see a duplicate absorbed.
        self.handled = 0
        self.duplicates = 0
        self.dead_lettered = 0
        self._kafka: AIOKafkaConsumer | None = None

    async def run(self) -> None:
        kafka = create_consumer(
            self.bootstrap_servers, *self.topics, group_id=self.name, client_id=self.name
        )
        self._kafka = kafka
        kafka.subscribe(topics=self.topics, listener=_Membership(self.joined))
        await kafka.start()
        try:
            while True:
                batch = await kafka.getmany(timeout_ms=1000)
                if kafka.assignment():
                    self.assigned.set()
                if not batch:
                    continue
                try:
                    outcome = await self._handle_batch(batch)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("consumer %s: batch failed; it will be read again", self.name)
                    for tp, records in batch.items():
                        kafka.seek(tp, records[0].offset)
                    await asyncio.sleep(max(self.retry_backoff, 0.1))
                    continue
                self.handled += len(outcome.handled)
                self.duplicates += outcome.duplicates
                self.dead_lettered += outcome.dead_lettered
                if self.before_offset_commit is not None:
                    await self.before_offset_commit()
                offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
                try:
                    await kafka.commit(offsets)
                except (CommitFailedError, KafkaError) as exc:
                    # The partitions moved to another member; it will re-read these records
                    # and the inbox drops them.
                    log.warning("consumer %s: offset commit failed: %r", self.name, exc)
                if self.on_committed is not None:
                    self.on_committed(outcome.handled)
        finally:
            self.assigned.clear()
            self.joined.clear()
            with contextlib.suppress(Exception):
                await asyncio.shield(kafka.stop())

    async def _handle_batch(
        self, batch: Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> BatchOutcome:
        records = [record for records in batch.values() for record in records]
        try:
            # Fast path: the whole batch in one transaction, no savepoints.
            async with self.session_factory() as session, session.begin():
                return await self._apply(session, records, careful=False)
        except Exception as exc:
            log.info("consumer %s: batch failed (%r); retrying one event at a time", self.name, exc)
        async with self.session_factory() as session, session.begin():
            return await self._apply(session, records, careful=True)

    async def _apply(
        self,
        session: AsyncSession,
        records: Sequence[ConsumerRecord[bytes, bytes]],
        *,
        careful: bool,
    ) -> BatchOutcome:
        """Claim the batch's events in the inbox with one statement, then run the handlers of
        the newly claimed ones in order. Careful mode isolates each handler in a savepoint,
        retries it, and dead-letters it when it keeps failing."""
        outcome = BatchOutcome()
        readable: list[tuple[ConsumerRecord[bytes, bytes], CloudEvent, Handler]] = []
        for record in records:
            try:
                event = CloudEvent.from_json(record.value or b"")
            except ValidationError as exc:
                unreadable_id = uuid.uuid5(
                    UNREADABLE_NAMESPACE, f"{record.topic}/{record.partition}/{record.offset}"
                )
                if await self._claim(session, [(unreadable_id, "unreadable")]):
                    await self._dead_letter(
                        session, record, unreadable_id, exc, attempts=1, readable=False
                    )
                    outcome.dead_lettered += 1
                continue
            handler = self.handlers.get(event.type)
            if handler is not None:  # a topic carries many types; this consumer reads some
                readable.append((record, event, handler))
        if not readable:
            return outcome
        claimed = await self._claim(session, [(e.id, e.type) for _, e, _ in readable])
        for record, event, handler in readable:
            if event.id not in claimed:
                outcome.duplicates += 1  # seen before: no second effect
                continue
            claimed.discard(event.id)  # the same event twice in one batch is a duplicate too
            if not careful:
                await handler(session, event)
                outcome.handled.append(event)
            elif await self._handle_carefully(session, record, event, handler):
                outcome.handled.append(event)
            else:
                outcome.dead_lettered += 1
        return outcome

    async def _handle_carefully(
        self,
        session: AsyncSession,
        record: ConsumerRecord[bytes, bytes],
        event: CloudEvent,
        handler: Handler,
    ) -> bool:
        error: Exception | None = None
        for attempt in range(1, self.max_attempts + 1):
            try:
                async with session.begin_nested():
                    await handler(session, event)
                return True
            except Exception as exc:
                error = exc
                log.warning(
                    "consumer %s: %s %s failed (attempt %d/%d): %r",
                    self.name,
                    event.type,
                    event.id,
                    attempt,
                    self.max_attempts,
                    exc,
                )
                if attempt < self.max_attempts:
                    await asyncio.sleep(self.retry_backoff * attempt)
        assert error is not None
        await self._dead_letter(session, record, event.id, error, attempts=self.max_attempts)
        return False

    async def _claim(
        self, session: AsyncSession, events: Sequence[tuple[uuid.UUID, str]]
    ) -> set[uuid.UUID]:
        """Insert inbox rows; returns the ids that were not there before."""
        result = await session.execute(
            insert(self.inbox)
            .values(
                [
                    {"consumer": self.name, "event_id": event_id, "event_type": event_type}
                    for event_id, event_type in events
                ]
            )
            .on_conflict_do_nothing()
            .returning(self.inbox.c.event_id)
        )
        return set(result.scalars())

    async def _dead_letter(
        self,
        session: AsyncSession,
        record: ConsumerRecord[bytes, bytes],
        event_id: uuid.UUID,
        error: BaseException,
        *,
        attempts: int,
        readable: bool = True,
    ) -> None:
        error_text = f"{type(error).__name__}: {error}"[:MAX_ERROR_HEADER]
        log.error("consumer %s: event %s dead-lettered: %s", self.name, event_id, error_text)
        headers: dict[str, Any] = {
            "chorus-dlq-consumer": self.name,
            "chorus-dlq-error": error_text,
            "chorus-dlq-attempts": str(attempts),
            "chorus-dlq-topic": record.topic,
            "chorus-dlq-partition": str(record.partition),
            "chorus-dlq-offset": str(record.offset),
        }
        if not readable:
            # Not a CloudEvent: the relay must not label it as one. Its own type, if it had one.
            original = dict(record.headers).get(CONTENT_TYPE_HEADER)
            headers[CONTENT_TYPE_HEADER] = (
                original.decode(errors="replace") if original else "application/octet-stream"
            )
        await self.publisher.enqueue(
            session,
            event_id=uuid.uuid5(event_id, self.name),
            topic=self.dead_letter_topic,
            key=(record.key or b"").decode(errors="replace") or str(event_id),
            payload=record.value or b"",
            headers=headers,
        )
        await session.execute(
            self.inbox.update()
            .where(self.inbox.c.consumer == self.name, self.inbox.c.event_id == event_id)
            .values(status="dead_lettered", error=error_text)
        )
