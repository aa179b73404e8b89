"""HTTP endpoints of the delivery log (messages and their attempts, per endpoint and per
message) and of replays; for the endpoints the caller manages, 404 for any other."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from chassis.database import SessionDep
from chassis.districts import ScopeDep
from chassis.errors import problem_responses
from chassis.pagination import InvalidCursor, Page, PageDep
from services.webhooks.deliveries.schemas import (
    AttemptOut,
    MessageOut,
    MessageWithPayload,
    Replayed,
    ReplaySince,
)
from services.webhooks.deliveries.service import (
    EndpointDisabledProblem,
    MessageNotFound,
    delivery_log,
)
from services.webhooks.runtime import RuntimeDep
from services.webhooks.subscriptions.service import EndpointNotFound
from services.webhooks.vocabulary import MessageStatus

router = APIRouter(tags=["deliveries"])


@router.get(
    "/endpoints/{endpoint_id}/messages",
    responses=problem_responses(EndpointNotFound, InvalidCursor),
)
async def list_endpoint_messages(
    endpoint_id: uuid.UUID,
    session: SessionDep,
    scope: ScopeDep,
    page: PageDep,
    status: Annotated[
        MessageStatus | None, Query(description="Only messages in this state")
    ] = None,
) -> Page[MessageOut]:
    """The endpoint's messages (one per event it matched), newest first."""
    return await delivery_log.messages_of_endpoint(session, scope, endpoint_id, page, status)


@router.get(
    "/endpoints/{endpoint_id}/attempts",
    responses=problem_responses(EndpointNotFound, InvalidCursor),
)
async def list_endpoint_attempts(
    endpoint_id: uuid.UUID, session: SessionDep, scope: ScopeDep, page: PageDep
) -> Page[AttemptOut]:
    """The endpoint's delivery log: every attempt of the last 30 days, newest first, with its
    status, latency and the start of the response."""
    return await delivery_log.attempts_of_endpoint(session, scope, endpoint_id, page)


@router.post(
    "/endpoints/{endpoint_id}/replay",
    responses=problem_responses(EndpointNotFound, EndpointDisabledProblem),
)
async def replay_failed_messages(
    endpoint_id: uuid.UUID,
    data: ReplaySince,
    session: SessionDep,
    scope: ScopeDep,
    runtime: RuntimeDep,
) -> Replayed:
    """Attempt again, now and from the start of the retry schedule, every failed message of
    the endpoint stored since `since` (at most 10,000 per call). The endpoint must be enabled
    (409). Audited."""
    count = await delivery_log.replay_failed(
        session, scope, endpoint_id, data.since, runtime.clock()
    )
    return Replayed(replayed=count)


@router.get("/messages/{message_id}", responses=problem_responses(MessageNotFound))
async def get_message(
    message_id: uuid.UUID, session: SessionDep, scope: ScopeDep
) -> MessageWithPayload:
    """One message, with the CloudEvent it delivers."""
    return MessageWithPayload.model_validate(await delivery_log.message(session, scope, message_id))


@router.get(
    "/messages/{message_id}/attempts",
    responses=problem_responses(MessageNotFound, InvalidCursor),
)
async def list_message_attempts(
    message_id: uuid.UUID, session: SessionDep, scope: ScopeDep, page: PageDep
) -> Page[AttemptOut]:
    """The message's attempts, newest first."""
    return await delivery_log.attempts_of_message(session, scope, message_id, page)


@router.post(
    "/messages/{message_id}/replay",
    responses=problem_responses(MessageNotFound, EndpointDisabledProblem),
)
async def replay_message(
    message_id: uuid.UUID, session: SessionDep, scope: ScopeDep, runtime: RuntimeDep
) -> MessageOut:
    """Attempt the message again, now and from the start of the retry schedule, whatever its
    state (a delivered one is sent again, with the same `webhook-id`, so receivers that
    de-duplicate ignore it). The endpoint must be enabled (409). Audited."""
    return MessageOut.model_validate(
        await delivery_log.replay_message(session, scope, message_id, runtime.clock())
    )
