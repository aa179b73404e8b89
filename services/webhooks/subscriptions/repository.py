"""Every query of endpoints and their audit trail."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.districts import Scope
from chassis.pagination import PageRequest, page_of, serial_page_of
from services.webhooks.access import tree
from services.webhooks.models import Endpoint, EndpointAudit


async def get(
    session: AsyncSession, endpoint_id: uuid.UUID, *, for_update: bool = False
) -> Endpoint | None:
    """A live (not deleted) endpoint."""
    endpoint = await session.get(Endpoint, endpoint_id, with_for_update=for_update)
    if endpoint is None or endpoint.deleted_at is not None:
        return None
    return endpoint


def _managed(scope: Scope, central: bool) -> ColumnElement[bool]:
    """SQL: endpoints the caller manages."""
    conditions = [tree.in_subtree(Endpoint.district_id, path) for path in scope.manage_paths]
    if central:
        conditions.append(Endpoint.district_id.is_(None))
    return or_(*conditions) if conditions else false()


async def list_managed(
    session: AsyncSession, scope: Scope, central: bool, page: PageRequest, under: str | None
) -> list[Endpoint]:
    """The live endpoints the caller manages, oldest first; with `under`, only those of the
    district at that path and below it."""
    query = select(Endpoint).where(Endpoint.deleted_at.is_(None), _managed(scope, central))
    if under is not None:
        query = query.where(tree.in_subtree(Endpoint.district_id, under))
    rows = await session.scalars(page_of(query, Endpoint.created_at, Endpoint.id, page))
    return list(rows)


def add_audit(
    session: AsyncSession, endpoint_id: uuid.UUID, action: str, actor: str, details: dict[str, Any]
) -> None:
    session.add(EndpointAudit(endpoint_id=endpoint_id, action=action, actor=actor, details=details))


async def list_audit(
    session: AsyncSession, endpoint_id: uuid.UUID, page: PageRequest
) -> list[EndpointAudit]:
    """The endpoint's audit trail, newest first."""
    query = select(EndpointAudit).where(EndpointAudit.endpoint_id == endpoint_id)
    rows = await session.scalars(serial_page_of(query, EndpointAudit.id, page))
    return list(rows)
