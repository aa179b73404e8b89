"""Producer, consumer and topic helpers over aiokafka, configured the one way Chorus uses them."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

log = logging.getLogger("chassis.kafka")

# Long enough to batch, short enough that an idle consumer sees a new record within a few
# milliseconds: the broker answers a fetch at once when records are there, otherwise after this.
FETCH_MAX_WAIT_MS = 20
# The CloudEvents Kafka protocol binding: a structured-mode record says what it is in this
# header; consumers outside Chorus tell a CloudEvent from other records by it.
CONTENT_TYPE_HEADER = "content-type"
CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json"


def create_producer(
    bootstrap_servers: str, *, client_id: str, enable_idempotence: bool
) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=enable_idempotence,
        linger_ms=0,
        request_timeout_ms=15_000,
    )


def create_consumer(
    bootstrap_servers: str, *topics: str, group_id: str, client_id: str
) -> AIOKafkaConsumer:
    # Offsets are committed by hand after the database transaction (never auto-commit: that is
    # at-most-once). "earliest" so nothing published before the group first joined is missed.
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap_servers,
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        max_poll_records=500,
        isolation_level="read_committed",
    )


async def ensure_topics(
    bootstrap_servers: str, topics: Iterable[str], *, partitions: int, replication: int = 1
) -> None:
    """Create missing topics. In production the operator (Strimzi KafkaTopic) owns them and this
    may be refused; that is logged and not fatal, since the topics then already exist."""
    wanted = sorted(set(topics))
    if not wanted:
        return
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="chorus-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [
                        NewTopic(t, num_partitions=partitions, replication_factor=replication)
                        for t in missing
                    ]
                )
            except TopicAlreadyExistsError:
                pass
            except KafkaError as exc:
                log.warning("could not create topics %s: %r", missing, exc)
    finally:
        await admin.close()
