"""Endpoints (subscriptions): where a district's events are delivered, signed.

Managed by the managers of the endpoint's district or above it; an endpoint without a district
filter (every event, those of no district included) by the central team. Anyone else gets 404
for an endpoint, as for any object they may not see. The district is fixed at creation: moving
an endpoint to another subtree is a new endpoint.

The URL is checked by the address guard when it is saved (its host resolved), and again at
every delivery. A secret is made at creation and at each rotation and shown once; a rotation
keeps the old secret signing beside the new one for the overlap
(``WEBHOOKS_SECRET_ROTATION_OVERLAP_HOURS``). Every change is audited, never with a secret.
Deleting an endpoint is soft: its audit trail and delivery log stay readable by id for the
retention, and it receives nothing more.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from chassis.districts import Scope, is_central
from chassis.errors import Forbidden, NotFound, Unprocessable
from chassis.pagination import Page, PageRequest, keyset_page
from services.webhooks.access import manages, tree
from services.webhooks.address_guard import AddressRefused
from services.webhooks.models import Endpoint, EndpointAudit
from services.webhooks.runtime import WebhooksRuntime
from services.webhooks.signing import new_secret
from services.webhooks.subscriptions import repository
from services.webhooks.subscriptions.schemas import (
    AuditEntry,
    EndpointCreate,
    EndpointOut,
    EndpointUpdate,
)
from services.webhooks.vocabulary import AuditAction, DisabledReason


class EndpointNotFound(NotFound):
    type_slug = "endpoint-not-found"
    title = "Endpoint not found"


class UrlRefused(Unprocessable):
    type_slug = "url-refused"
    title = "The URL is refused"


async def check_url(runtime: WebhooksRuntime, url: str) -> None:
    try:
        await runtime.guard.check_url(url)
    except AddressRefused as exc:
        raise UrlRefused(str(exc)) from exc


class EndpointService:
    async def create(
        self, session: AsyncSession, scope: Scope, data: EndpointCreate, runtime: WebhooksRuntime
    ) -> tuple[Endpoint, str]:
        """The new endpoint and its secret (the only time it is shown)."""
        path = None
        if data.district_id is not None:
            path = await tree.district_path(session, scope, data.district_id)
        if not manages(scope, path):
            raise Forbidden(
                "Managing endpoints needs a manager role on their district or above it; "
                "an endpoint without a district filter, the central team."
            )
        await check_url(runtime, data.url)
        secret = new_secret()
        now = runtime.clock()
        endpoint = Endpoint(
            id=uuid.uuid4(),
            district_id=data.district_id,
            url=data.url,
            description=data.description,
            event_types=list(dict.fromkeys(data.event_types)),
            enabled=data.enabled,
            disabled_reason=None if data.enabled else DisabledReason.MANUAL.value,
            secret=runtime.box.seal(secret),
            created_by=scope.principal.sub,
            created_at=now,
            updated_at=now,
        )
        session.add(endpoint)
        await session.flush()
        repository.add_audit(
            session,
            endpoint.id,
            AuditAction.CREATED,
            scope.principal.sub,
            EndpointOut.model_validate(endpoint).model_dump(
                mode="json", include={"url", "event_types", "district_id", "description", "enabled"}
            ),
        )
        return endpoint, secret

    async def get(
        self,
        session: AsyncSession,
        scope: Scope,
        endpoint_id: uuid.UUID,
        *,
        for_update: bool = False,
    ) -> Endpoint:
        """An endpoint the caller manages, or 404."""
        endpoint = await repository.get(session, endpoint_id, for_update=for_update)
        if endpoint is not None:
            path = await tree.path_of(session, endpoint.district_id)
            known = endpoint.district_id is None or path is not None
            if known and manages(scope, path):
                return endpoint
        raise EndpointNotFound(f"No endpoint {endpoint_id}.")

    async def list(
        self, session: AsyncSession, scope: Scope, page: PageRequest, district_id: str | None
    ) -> Page[EndpointOut]:
        under = None
        if district_id is not None:
            under = await tree.district_path(session, scope, district_id)
        rows = await repository.list_managed(session, scope, is_central(scope), page, under)
        return keyset_page(rows, page, lambda e: (e.created_at, e.id), EndpointOut.model_validate)

    async def update(
        self,
        session: AsyncSession,
        scope: Scope,
        endpoint_id: uuid.UUID,
        data: EndpointUpdate,
        runtime: WebhooksRuntime,
    ) -> Endpoint:
        endpoint = await self.get(session, scope, endpoint_id, for_update=True)
        changes: dict[str, Any] = {}
        if data.url is not None and data.url != endpoint.url:
            await check_url(runtime, data.url)
            changes["url"] = [endpoint.url, data.url]
            endpoint.url = data.url
        if data.event_types is not None:
            patterns = list(dict.fromkeys(data.event_types))
            if patterns != endpoint.event_types:
                changes["event_types"] = [endpoint.event_types, patterns]
                endpoint.event_types = patterns
        if "description" in data.model_fields_set and data.description != endpoint.description:
            changes["description"] = [endpoint.description, data.description]
            endpoint.description = data.description
        action = AuditAction.UPDATED
        if data.enabled is not None and data.enabled != endpoint.enabled:
            changes["enabled"] = [endpoint.enabled, data.enabled]
            action = AuditAction.ENABLED if data.enabled else AuditAction.DISABLED
            endpoint.enabled = data.enabled
            endpoint.disabled_reason = None if data.enabled else DisabledReason.MANUAL.value
            # Enabled again, it starts a new failure window.
            endpoint.failing_since = None
        if changes:
            endpoint.updated_at = runtime.clock()
            repository.add_audit(session, endpoint.id, action, scope.principal.sub, changes)
            await session.flush()
        return endpoint

    async def delete(
        self, session: AsyncSession, scope: Scope, endpoint_id: uuid.UUID, runtime: WebhooksRuntime
    ) -> None:
        endpoint = await self.get(session, scope, endpoint_id, for_update=True)
        endpoint.deleted_at = endpoint.updated_at = runtime.clock()
        endpoint.enabled = False
        repository.add_audit(session, endpoint.id, AuditAction.DELETED, scope.principal.sub, {})
        await session.flush()

    async def rotate_secret(
        self, session: AsyncSession, scope: Scope, endpoint_id: uuid.UUID, runtime: WebhooksRuntime
    ) -> tuple[Endpoint, str]:
        """A new secret; the current one keeps signing for the overlap (a secret rotated
        twice within an overlap drops the oldest)."""
        endpoint = await self.get(session, scope, endpoint_id, for_update=True)
        secret = new_secret()
        now = runtime.clock()
        overlap = timedelta(hours=runtime.settings.secret_rotation_overlap_hours)
        if overlap > timedelta(0):
            endpoint.previous_secret = endpoint.secret
            endpoint.previous_secret_expires_at = now + overlap
        else:
            endpoint.previous_secret = endpoint.previous_secret_expires_at = None
        endpoint.secret = runtime.box.seal(secret)
        endpoint.updated_at = now
        details = {"previous_secret_expires_at": _iso(endpoint.previous_secret_expires_at)}
        repository.add_audit(
            session, endpoint.id, AuditAction.SECRET_ROTATED, scope.principal.sub, details
        )
        await session.flush()
        return endpoint, secret

    async def audit(
        self, session: AsyncSession, scope: Scope, endpoint_id: uuid.UUID, page: PageRequest
    ) -> Page[AuditEntry]:
        await self.get(session, scope, endpoint_id)
        rows = await repository.list_audit(session, endpoint_id, page)
        return keyset_page(rows, page, _audit_key, AuditEntry.model_validate)


def _audit_key(entry: EndpointAudit) -> tuple[int]:
    return (entry.id,)


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


endpoints = EndpointService()
