"""HTTP endpoints of webhook endpoints (subscriptions), managed by district managers for their
subtree (company-wide ones by the central team); see the service for the rules."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from chassis.database import SessionDep
from chassis.districts import DistrictNotFound, ScopeDep
from chassis.errors import Forbidden, problem_responses
from chassis.pagination import InvalidCursor, Page, PageDep
from services.webhooks.runtime import RuntimeDep
from services.webhooks.subscriptions.schemas import (
    AuditEntry,
    EndpointCreate,
    EndpointCreated,
    EndpointOut,
    EndpointUpdate,
    SecretRotated,
)
from services.webhooks.subscriptions.service import EndpointNotFound, UrlRefused, endpoints

router = APIRouter(tags=["endpoints"])


@router.post(
    "/endpoints",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(DistrictNotFound, Forbidden, UrlRefused),
)
async def create_endpoint(
    data: EndpointCreate, session: SessionDep, scope: ScopeDep, runtime: RuntimeDep
) -> EndpointCreated:
    """Subscribe a URL to events: those whose type matches one of `event_types` (exact, a
    prefix ending in `.*`, or `*`) and whose district is `district_id` or below it (without a
    district: every event, for the central team). The URL must be https (http only for
    allow-listed hosts) and must not reach a private, loopback, link-local or metadata address
    (422). The answer carries the signing secret, shown this once."""
    endpoint, secret = await endpoints.create(session, scope, data, runtime)
    return EndpointCreated.model_validate(
        {**EndpointOut.model_validate(endpoint).model_dump(), "secret": secret}
    )


@router.get("/endpoints", responses=problem_responses(InvalidCursor, DistrictNotFound))
async def list_endpoints(
    session: SessionDep,
    scope: ScopeDep,
    page: PageDep,
    district_id: Annotated[
        str | None, Query(max_length=200, description="Only those of this district and below")
    ] = None,
) -> Page[EndpointOut]:
    """The endpoints you manage, oldest first."""
    return await endpoints.list(session, scope, page, district_id)


@router.get("/endpoints/{endpoint_id}", responses=problem_responses(EndpointNotFound))
async def get_endpoint(endpoint_id: uuid.UUID, session: SessionDep, scope: ScopeDep) -> EndpointOut:
    """One endpoint you manage; 404 for any other."""
    return EndpointOut.model_validate(await endpoints.get(session, scope, endpoint_id))


@router.patch("/endpoints/{endpoint_id}", responses=problem_responses(EndpointNotFound, UrlRefused))
async def update_endpoint(
    endpoint_id: uuid.UUID,
    data: EndpointUpdate,
    session: SessionDep,
    scope: ScopeDep,
    runtime: RuntimeDep,
) -> EndpointOut:
    """Change an endpoint's URL (checked again), event types, description, or enable it
    (again, after a 410 or a failure window) or disable it. Audited."""
    return EndpointOut.model_validate(
        await endpoints.update(session, scope, endpoint_id, data, runtime)
    )


@router.delete(
    "/endpoints/{endpoint_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(EndpointNotFound),
)
async def delete_endpoint(
    endpoint_id: uuid.UUID, session: SessionDep, scope: ScopeDep, runtime: RuntimeDep
) -> Response:
    """Stop delivering to an endpoint, for good. Its audit trail stays."""
    await endpoints.delete(session, scope, endpoint_id, runtime)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/endpoints/{endpoint_id}/secret/rotate", responses=problem_responses(EndpointNotFound)
)
async def rotate_secret(
    endpoint_id: uuid.UUID, session: SessionDep, scope: ScopeDep, runtime: RuntimeDep
) -> SecretRotated:
    """A new signing secret, shown this once. Until `previous_secret_expires_at` (the overlap,
    24 h by default) deliveries carry two signatures, with the new and the old secret, so the
    receiver can switch at its pace."""
    endpoint, secret = await endpoints.rotate_secret(session, scope, endpoint_id, runtime)
    return SecretRotated(
        secret=secret, previous_secret_expires_at=endpoint.previous_secret_expires_at
    )


@router.get(
    "/endpoints/{endpoint_id}/audit",
    responses=problem_responses(EndpointNotFound, InvalidCursor),
)
async def endpoint_audit(
    endpoint_id: uuid.UUID, session: SessionDep, scope: ScopeDep, page: PageDep
) -> Page[AuditEntry]:
    """Every change to the endpoint, by whom, newest first."""
    return await endpoints.audit(session, scope, endpoint_id, page)
