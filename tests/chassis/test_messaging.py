"""The outbox, the relay and the idempotent consumer against a real PostgreSQL and broker."""

from __future__ import annotations

import asyncio
import json
import random
from collections import defaultdict
from collections.abc import Sequence

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import insert, select, text, update

from chassis.events import CloudEvent
from chassis.settings import events_topic
from tests.chassis.kit import (
    EVENT_TYPE_SUFFIX,
    MiniService,
    ThingChanged,
    count,
    effect_handler,
    eventually,
    read_topic,
    service_pair,
)
from tests.conftest import Infrastructure

pytestmark = pytest.mark.asyncio


def handlers_for(producer: MiniService, consumer: MiniService) -> dict[str, object]:
    return {f"chorus.{producer.name}{EVENT_TYPE_SUFFIX}": effect_handler(consumer)}


async def write_thing(producer: MiniService, subject: str, **data: object) -> CloudEvent:
    """A state change and its event in one transaction."""
    async with producer.sessions() as session, session.begin():
        await session.execute(text("INSERT INTO things (id) VALUES (:id)"), {"id": subject})
        return await producer.publish(session, subject, **data)


async def unsent(service: MiniService) -> int:
    async with service.sessions() as session:
        result = await session.execute(
            select(service.outbox.c.id).where(service.outbox.c.sent_at.is_(None))
        )
        return len(result.all())


async def test_event_is_delivered_with_the_state_change(infrastructure: Infrastructure) -> None:
    async with service_pair(infrastructure) as (producer, consumer):
        await producer.start_relay()
        worker = consumer.consumer(producer.name, handlers_for(producer, consumer))
        consumer.run(worker)
        event = await write_thing(producer, "thing-1", version=1)

        async def delivered() -> bool:
            return len(await consumer.effect_rows()) == 1

        await eventually(delivered)
        [effect] = await consumer.effect_rows()
        assert effect["event_id"] == event.id
        assert effect["subject"] == "thing-1"
        await eventually(lambda: _zero(unsent(producer)))


async def _zero(awaitable: object) -> bool:
    return await awaitable == 0  # type: ignore[misc]


async def test_relay_killed_after_publishing_before_marking_sent(
    infrastructure: Infrastructure,
) -> None:
    async with service_pair(infrastructure) as (producer, consumer):
        published = asyncio.Event()

        async def die_before_marking(ids: Sequence[int]) -> None:
            published.set()
            await asyncio.Event().wait()  # hangs here until the task is killed

        first_relay = await producer.start_relay(after_publish=die_before_marking)
        event = await write_thing(producer, "thing-a", version=1)
        await asyncio.wait_for(published.wait(), 10)
        first_relay.cancel()
        await asyncio.gather(first_relay, return_exceptions=True)
        assert await unsent(producer) == 1, "the killed relay must not have marked the row"

        await producer.start_relay()  # a new relay sends the same row again
        await eventually(lambda: _zero(unsent(producer)))
        records = await read_topic(infrastructure.bootstrap_servers, events_topic(producer.name), 2)
        assert [CloudEvent.from_json(value).id for value, _ in records] == [event.id, event.id]

        worker = consumer.consumer(producer.name, handlers_for(producer, consumer))
        consumer.run(worker)

        async def both_seen() -> bool:
            return worker.handled + worker.duplicates == 2

        await eventually(both_seen)
        assert worker.duplicates == 1
        assert [r["event_id"] for r in await consumer.effect_rows()] == [event.id]


async def test_consumer_crash_after_transaction_before_offset_commit(
    infrastructure: Infrastructure,
) -> None:
    async with service_pair(infrastructure) as (producer, consumer):
        await producer.start_relay()
        crashed = asyncio.Event()

        class ProcessDied(BaseException):
            """Not an Exception: nothing in the consumer may catch it, as with a real crash."""

        async def crash_before_commit() -> None:
            crashed.set()
            raise ProcessDied

        first = consumer.consumer(
            producer.name,
            handlers_for(producer, consumer),
            before_offset_commit=crash_before_commit,
        )
        first_task = consumer.run(first)
        event = await write_thing(producer, "thing-b", version=1)
        await asyncio.wait_for(crashed.wait(), 40)
        with pytest.raises(ProcessDied):
            await first_task
        assert [r["event_id"] for r in await consumer.effect_rows()] == [event.id]

        second = consumer.consumer(producer.name, handlers_for(producer, consumer))
        consumer.run(second)

        async def redelivered() -> bool:
            return second.duplicates == 1

        await eventually(redelivered)
        assert second.handled == 0
        assert [r["event_id"] for r in await consumer.effect_rows()] == [event.id]


async def test_same_event_arriving_twice_has_one_effect(infrastructure: Infrastructure) -> None:
    async with service_pair(infrastructure) as (producer, consumer):
        event = CloudEvent(
            source=f"/services/{producer.name}",
            type=f"chorus.{producer.name}{EVENT_TYPE_SUFFIX}",
            subject="thing-c",
            data={"version": 1},
        )
        kafka = AIOKafkaProducer(bootstrap_servers=infrastructure.bootstrap_servers)
        await kafka.start()
        try:
            for _ in range(2):
                await kafka.send_and_wait(
                    events_topic(producer.name), event.to_json(), key=b"thing-c"
                )
        finally:
            await kafka.stop()
        worker = consumer.consumer(producer.name, handlers_for(producer, consumer))
        consumer.run(worker)

        async def both_read() -> bool:
            return worker.handled + worker.duplicates == 2

        await eventually(both_read)
        assert (worker.handled, worker.duplicates) == (1, 1)
        assert len(await consumer.effect_rows()) == 1


async def test_poison_event_goes_to_dead_letter_and_consumer_continues(
    infrastructure: Infrastructure,
) -> None:
    async with service_pair(infrastructure) as (producer, consumer):
        await producer.start_relay()
        await consumer.start_relay()  # dead letters travel through the consumer's own outbox
        worker = consumer.consumer(producer.name, handlers_for(producer, consumer))
        consumer.run(worker)
        poison = await write_thing(producer, "thing-p", poison=True)
        good = await write_thing(producer, "thing-g", version=1)
        kafka = AIOKafkaProducer(bootstrap_servers=infrastructure.bootstrap_servers)
        await kafka.start()
        try:  # and a record that is not a CloudEvent at all
            await kafka.send_and_wait(events_topic(producer.name), b"{not json", key=b"x")
        finally:
            await kafka.stop()

        async def good_handled() -> bool:
            return [r["event_id"] for r in await consumer.effect_rows()] == [good.id]

        await eventually(good_handled)
        letters = await read_topic(infrastructure.bootstrap_servers, consumer.dead_letter_topic, 2)
        assert len(letters) == 2
        by_payload = {value: headers for value, headers in letters}
        headers = by_payload[poison.to_json()]
        assert b"cannot digest thing-p" in headers["chorus-dlq-error"]
        assert headers["chorus-dlq-consumer"] == worker.name.encode()
        assert headers["chorus-dlq-attempts"] == b"2"
        assert by_payload[b"{not json"]["chorus-dlq-error"].startswith(b"ValidationError")
        # The dead letter of an event is that CloudEvent; an unreadable record is not one.
        assert headers["content-type"] == b"application/cloudevents+json"
        assert by_payload[b"{not json"]["content-type"] == b"application/octet-stream"
        async with consumer.sessions() as session:
            status = await session.scalar(
                select(consumer.inbox.c.status).where(consumer.inbox.c.event_id == poison.id)
            )
        assert status == "dead_lettered"
        # The consumer is still going: a later event is handled too.
        later = await write_thing(producer, "thing-later", version=2)

        async def later_handled() -> bool:
            return later.id in [r["event_id"] for r in await consumer.effect_rows()]

        await eventually(later_handled)


async def test_every_record_carries_the_cloudevents_content_type(
    infrastructure: Infrastructure,
) -> None:
    """The CloudEvents Kafka binding (structured mode): `content-type` on every record, which
    consumers outside Chorus rely on. Read with a plain aiokafka consumer, as they would."""
    async with service_pair(infrastructure) as (producer, _consumer):
        await producer.start_relay()
        single = await write_thing(producer, "thing-1", version=1)
        async with producer.sessions() as session, session.begin():
            await session.execute(text("INSERT INTO things (id) VALUES ('thing-2'), ('thing-3')"))
            many = await producer.publisher.publish_many(
                session, [("thing-2", ThingChanged(version=1)), ("thing-3", ThingChanged())]
            )
        records = await read_topic(infrastructure.bootstrap_servers, events_topic(producer.name), 3)
        assert len(records) == 3
        for value, headers in records:
            assert headers["content-type"] == b"application/cloudevents+json"
            envelope = json.loads(value)
            assert envelope["specversion"] == "1.0"
            assert CloudEvent.from_json(value).source == f"/services/{producer.name}"
        ids = {CloudEvent.from_json(value).id for value, _ in records}
        assert ids == {single.id, *(event.id for event in many)}


async def test_thousand_events_of_ten_aggregates_arrive_in_per_aggregate_order(
    infrastructure: Infrastructure,
) -> None:
    aggregates = [f"agg-{i}" for i in range(10)]
    async with service_pair(infrastructure) as (producer, consumer):
        async with producer.sessions() as session, session.begin():
            await session.execute(insert(_things(producer)), [{"id": a} for a in aggregates])
        await producer.start_relay()
        worker = consumer.consumer(producer.name, handlers_for(producer, consumer))
        consumer.run(worker)
        rng = random.Random(7)
        plan = [aggregates[i % 10] for i in range(1000)]
        rng.shuffle(plan)
        queue: asyncio.Queue[str] = asyncio.Queue()
        for subject in plan:
            queue.put_nowait(subject)

        async def writer() -> None:
            things = _things(producer)
            while not queue.empty():
                subject = queue.get_nowait()
                async with producer.sessions() as session, session.begin():
                    version = await session.scalar(
                        update(things)
                        .where(things.c.id == subject)
                        .values(version=things.c.version + 1)
                        .returning(things.c.version)
                    )
                    await producer.publish(session, subject, version=version)
                    await asyncio.sleep(rng.random() / 1000)  # widen the race

        await asyncio.gather(*(writer() for _ in range(16)))

        async def all_arrived() -> bool:
            return await count(consumer.sessions, consumer.effects) == 1000

        await eventually(all_arrived, within=90)
        seen: dict[str, list[int]] = defaultdict(list)
        for row in await consumer.effect_rows():
            seen[str(row["subject"])].append(int(row["version"]))  # type: ignore[call-overload]
        assert sorted(seen) == aggregates
        for subject, versions in seen.items():
            assert versions == list(range(1, 101)), f"{subject} out of order"


async def test_events_of_one_aggregate_commit_one_after_another(
    infrastructure: Infrastructure,
) -> None:
    """Without a row lock in the domain, two transactions publishing for the same aggregate are
    still serialised by the outbox, so outbox order is commit order."""
    async with service_pair(infrastructure) as (producer, _consumer):
        first_inserted = asyncio.Event()
        order: list[str] = []

        async def first() -> None:
            async with producer.sessions() as session, session.begin():
                await producer.publish(session, "same", n=1)
                first_inserted.set()
                await asyncio.sleep(0.3)
                order.append("first committed")

        async def second() -> None:
            await first_inserted.wait()
            async with producer.sessions() as session, session.begin():
                await producer.publish(session, "same", n=2)
                order.append("second inserted")

        await asyncio.gather(first(), second())
        assert order == ["first committed", "second inserted"]
        async with producer.sessions() as session:
            payloads = (
                (
                    await session.execute(
                        select(producer.outbox.c.payload).order_by(producer.outbox.c.id)
                    )
                )
                .scalars()
                .all()
            )
        assert [json.loads(p)["data"]["n"] for p in payloads] == [1, 2]


async def test_rolled_back_transaction_publishes_nothing(infrastructure: Infrastructure) -> None:
    async with service_pair(infrastructure) as (producer, consumer):
        await producer.start_relay()
        worker = consumer.consumer(producer.name, handlers_for(producer, consumer))
        consumer.run(worker)

        class Abort(Exception):
            pass

        async def publish_then_fail() -> None:
            async with producer.sessions() as session, session.begin():
                await producer.publish(session, "ghost", version=1)
                raise Abort

        with pytest.raises(Abort):
            await publish_then_fail()
        marker = await write_thing(producer, "ghost", version=2)  # same key: same partition

        async def marker_arrived() -> bool:
            return len(await consumer.effect_rows()) >= 1

        await eventually(marker_arrived)
        assert [r["event_id"] for r in await consumer.effect_rows()] == [marker.id]
        assert await count(producer.sessions, producer.outbox) == 1
        records = await read_topic(infrastructure.bootstrap_servers, events_topic(producer.name), 1)
        assert [CloudEvent.from_json(v).id for v, _ in records] == [marker.id]


def _things(service: MiniService):  # type: ignore[no-untyped-def]
    from sqlalchemy import Column, Integer, MetaData, Table, Text

    return Table(
        "things", MetaData(), Column("id", Text, primary_key=True), Column("version", Integer)
    )


async def test_one_relay_per_service_is_active_and_a_standby_takes_over(
    infrastructure: Infrastructure,
) -> None:
    async with service_pair(infrastructure) as (producer, _consumer):
        first_task = await producer.start_relay()
        second_task = await producer.start_relay()
        first, second = producer.relays

        async def one_leader() -> bool:
            return [first.is_leader, second.is_leader].count(True) == 1

        await eventually(one_leader)
        await asyncio.sleep(0.5)  # the standby keeps trying, and keeps failing to take over
        assert [first.is_leader, second.is_leader].count(True) == 1
        leader_task, standby = (first_task, second) if first.is_leader else (second_task, first)
        leader_task.cancel()
        await asyncio.gather(leader_task, return_exceptions=True)

        async def standby_leads() -> bool:
            return standby.is_leader

        await eventually(standby_leads, within=10)
        await write_thing(producer, "after-failover", version=1)
        await eventually(lambda: _zero(unsent(producer)), within=10)
