"""The simulator's HTTP routes: Chorus's deliveries in, a Hootsuite-like REST API out.

Errors are JSON, ``{"errors": [{"code", "message"}]}`` as Hootsuite's API answers them.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import JSONResponse

from tools.scheduler_sim.inbound import DeliveryRefused, receive
from tools.scheduler_sim.runtime import Runtime
from tools.scheduler_sim.schemas import (
    AnalyticsEnvelope,
    MessageEnvelope,
    MessageList,
    ShadowPostCreate,
)
from tools.scheduler_sim.service import MessageNotFound, MessageNotSent
from tools.scheduler_sim.vocabulary import MessageState


def runtime(request: Request) -> Runtime:
    found: Runtime = request.app.state.runtime
    return found


RuntimeDep = Annotated[Runtime, Depends(runtime)]

router = APIRouter()


def error(status_code: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"errors": [{"code": code, "message": message}]}, status_code=status_code)


ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such message"},
    409: {"description": "The message is not sent (analytics only)"},
}


@router.post(
    "/webhooks/chorus",
    responses={
        400: {"description": "Not a CloudEvent, or its data does not fit its type"},
        401: {"description": "Unsigned, badly signed, or older than five minutes"},
    },
)
async def chorus_delivery(request: Request, rt: RuntimeDep) -> Any:
    """Receive one Chorus delivery (Standard Webhooks, a CloudEvent body)."""
    body = await request.body()
    try:
        outcome = receive(rt.scheduler, rt.inbound_webhook, body, request.headers)
    except DeliveryRefused as refused:
        return error(refused.status, refused.code, refused.message)
    rt.wake_publisher()
    return outcome


@router.get("/v1/messages", response_model=MessageList)
async def list_messages(
    rt: RuntimeDep,
    state: MessageState | None = None,
    social_profile_ids: Annotated[list[str], Query(alias="socialProfileIds")] = [],  # noqa: B006
    post_id: Annotated[uuid.UUID | None, Query(alias="postId")] = None,
) -> MessageList:
    """Messages, by send time; filtered by state, social profiles and Chorus post."""
    found = rt.scheduler.store.find(
        state=state, social_profile_ids=social_profile_ids, post_id=post_id
    )
    return MessageList(data=found)


@router.get("/v1/messages/{message_id}", response_model=MessageEnvelope, responses=ERRORS)
async def get_message(message_id: str, rt: RuntimeDep) -> Any:
    """One message."""
    message = rt.scheduler.store.get(message_id)
    if message is None:
        return error(404, "NOT_FOUND", f"No message {message_id}")
    return MessageEnvelope(data=message)


@router.get(
    "/v1/messages/{message_id}/analytics", response_model=AnalyticsEnvelope, responses=ERRORS
)
async def get_analytics(message_id: str, rt: RuntimeDep) -> Any:
    """The metrics of a sent message now; they grow with the time since sending."""
    try:
        return AnalyticsEnvelope(data=rt.scheduler.analytics(message_id))
    except MessageNotFound:
        return error(404, "NOT_FOUND", f"No message {message_id}")
    except MessageNotSent:
        return error(409, "NOT_SENT", f"Message {message_id} is not sent")


@router.post(
    "/v1/shadow-posts", response_model=MessageEnvelope, status_code=status.HTTP_201_CREATED
)
async def create_shadow_post(request: ShadowPostCreate, rt: RuntimeDep) -> MessageEnvelope:
    """Report a post published on a profile outside Chorus: a message.sent callback with no
    Chorus post id."""
    return MessageEnvelope(data=rt.scheduler.shadow_post(request))
