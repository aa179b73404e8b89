"""The audit trail: every change to an account, a case or a district, who and when.

A change that other services act on is audited and published together
(``record_and_publish``), in the request's transaction: the trail and the event stream never
tell different stories."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.events import EventData
from chassis.observability import request_id_var
from services.inventory.models import AuditEntry, messaging


async def record(
    session: AsyncSession,
    *,
    entity_type: str,
    entity_id: object,
    action: str,
    actor: str,
    changes: dict[str, Any] | None = None,
) -> None:
    await session.execute(
        insert(AuditEntry).values(
            entity_type=entity_type,
            entity_id=str(entity_id),
            action=action,
            actor=actor,
            request_id=request_id_var.get(),
            changes=changes or {},
        )
    )


async def record_and_publish(
    session: AsyncSession,
    *,
    entity_type: str,
    entity_id: object,
    action: str,
    actor: str,
    changes: dict[str, Any],
    event: EventData,
) -> None:
    """Audit a change and publish its event (one of ``events.catalog``, its subject the
    entity's id) in the same transaction."""
    await record(
        session,
        entity_type=entity_type,
        entity_id=entity_id,
        action=action,
        actor=actor,
        changes=changes,
    )
    await messaging.publisher.publish(session, event, subject=str(entity_id))


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """{field: [old, new]} for the fields that changed."""
    return {
        key: [before.get(key), value] for key, value in after.items() if before.get(key) != value
    }


async def entries(
    session: AsyncSession, entity_type: str, entity_id: object, *, after_id: int, limit: int
) -> list[AuditEntry]:
    result = await session.execute(
        select(AuditEntry)
        .where(
            AuditEntry.entity_type == entity_type,
            AuditEntry.entity_id == str(entity_id),
            AuditEntry.id > after_id,
        )
        .order_by(AuditEntry.id)
        .limit(limit)
    )
    return list(result.scalars())
