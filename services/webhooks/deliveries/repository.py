"""Every query of messages, attempts and delivery jobs.

Delivery jobs are procrastinate jobs (``chassis.jobs``) on the service's own queue for
deliveries, deferred here with procrastinate's own SQL function inside the caller's
transaction: a message and the job that delivers it commit together, or neither does.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.pagination import PageRequest, page_of, serial_page_of
from services.webhooks.deliveries.matching import LiveEndpoint
from services.webhooks.models import Attempt, Endpoint, Message, districts
from services.webhooks.vocabulary import MessageStatus

DELIVERY_QUEUE = "webhooks_deliveries"
DELIVER_TASK = f"{DELIVERY_QUEUE}.deliver"

_DEFER = text(
    "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW(:queue, :task, 0, NULL, NULL,"
    " CAST(:args AS jsonb), :at)::procrastinate_job_to_defer_v1])"
)


async def defer_delivery(
    session: AsyncSession,
    message_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    token: int,
    at: datetime | None,
) -> None:
    """A delivery job for the message, due at `at` (None: now), in the caller's transaction."""
    args = {"message_id": str(message_id), "endpoint_id": str(endpoint_id), "token": token}
    await session.execute(
        _DEFER,
        {"queue": DELIVERY_QUEUE, "task": DELIVER_TASK, "args": json.dumps(args), "at": at},
    )


async def list_live_endpoints(session: AsyncSession) -> list[LiveEndpoint]:
    """Every enabled endpoint, with its district's path from the replica."""
    rows = await session.execute(
        select(Endpoint.id, Endpoint.event_types, Endpoint.district_id, districts.c.path)
        .outerjoin(districts, districts.c.id == Endpoint.district_id)
        .where(Endpoint.enabled, Endpoint.deleted_at.is_(None))
    )
    return [LiveEndpoint(*row) for row in rows]


async def district_path(session: AsyncSession, district_id: str) -> str | None:
    path = await session.scalar(select(districts.c.path).where(districts.c.id == district_id))
    return None if path is None else str(path)


async def store_message(
    session: AsyncSession,
    endpoint_id: uuid.UUID,
    event_id: uuid.UUID,
    event_type: str,
    payload: dict[str, Any],
) -> uuid.UUID | None:
    """A new pending message due now; None if the endpoint has this event already."""
    message_id: uuid.UUID | None = await session.scalar(
        insert(Message)
        .values(
            id=uuid.uuid4(),
            endpoint_id=endpoint_id,
            event_id=event_id,
            event_type=event_type,
            payload=payload,
            next_attempt_at=func.now(),
        )
        .on_conflict_do_nothing(constraint="uq_messages_endpoint_event")
        .returning(Message.id)
    )
    return message_id


async def lock_message(session: AsyncSession, message_id: uuid.UUID) -> Message | None:
    message: Message | None = await session.get(Message, message_id, with_for_update=True)
    return message


async def get_message(session: AsyncSession, message_id: uuid.UUID) -> Message | None:
    message: Message | None = await session.get(Message, message_id)
    return message


async def lock_endpoint(session: AsyncSession, endpoint_id: uuid.UUID) -> Endpoint | None:
    endpoint: Endpoint | None = await session.get(Endpoint, endpoint_id, with_for_update=True)
    return endpoint


def add_attempt(session: AsyncSession, attempt: Attempt) -> None:
    session.add(attempt)


async def list_attempts_of_message(
    session: AsyncSession, message_id: uuid.UUID, page: PageRequest
) -> list[Attempt]:
    query = select(Attempt).where(Attempt.message_id == message_id)
    return list(await session.scalars(serial_page_of(query, Attempt.id, page)))


async def list_attempts_of_endpoint(
    session: AsyncSession, endpoint_id: uuid.UUID, page: PageRequest
) -> list[Attempt]:
    query = select(Attempt).where(Attempt.endpoint_id == endpoint_id)
    return list(await session.scalars(serial_page_of(query, Attempt.id, page)))


async def list_messages_of_endpoint(
    session: AsyncSession,
    endpoint_id: uuid.UUID,
    page: PageRequest,
    status: MessageStatus | None,
) -> list[Message]:
    """The endpoint's messages, newest first."""
    query = select(Message).where(Message.endpoint_id == endpoint_id)
    if status is not None:
        query = query.where(Message.status == status.value)
    return list(
        await session.scalars(page_of(query, Message.created_at, Message.id, page, descending=True))
    )


async def lock_failed_messages_since(
    session: AsyncSession, endpoint_id: uuid.UUID, since: datetime, limit: int
) -> Sequence[Message]:
    """The endpoint's failed messages created since `since`, oldest first, locked."""
    rows = await session.scalars(
        select(Message)
        .where(
            Message.endpoint_id == endpoint_id,
            Message.status == MessageStatus.FAILED.value,
            Message.created_at >= since,
        )
        .order_by(Message.created_at, Message.id)
        .limit(limit)
        .with_for_update()
    )
    return list(rows)


async def fail_pending_messages(session: AsyncSession, endpoint_id: uuid.UUID) -> None:
    """The endpoint's pending messages fail (it was disabled); their jobs become stale."""
    await session.execute(
        update(Message)
        .where(Message.endpoint_id == endpoint_id, Message.status == MessageStatus.PENDING.value)
        .values(
            status=MessageStatus.FAILED.value,
            next_attempt_at=None,
            job_token=Message.job_token + 1,
        )
    )


async def prune_attempts(session: AsyncSession, before: datetime) -> int:
    """Delete attempts made before `before`; how many went."""
    result = await session.execute(
        text("DELETE FROM attempts WHERE at < :before"), {"before": before}
    )
    return int(getattr(result, "rowcount", 0) or 0)
