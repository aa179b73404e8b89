"""iCalendar feeds: tokens are managed through the authenticated API (`router`); the feed
itself is served on `public_router` (under /public, no principal), where the token in the path
is the credential."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status

from chassis.database import SessionDep
from chassis.errors import Forbidden, problem_responses
from chassis.pagination import InvalidCursor, Page, PageDep, encode_cursor
from chassis.principal import PrincipalDep
from services.calendar.access import scope_of
from services.calendar.calendars.service import CalendarNotFound
from services.calendar.feeds.schemas import FeedTokenCreate, FeedTokenCreated, FeedTokenOut
from services.calendar.feeds.service import (
    FeedNotFound,
    FeedTokenNotFound,
    TooManyFeedTokens,
    feeds,
)

router = APIRouter(tags=["feeds"])
# Served under /public (no principal): the feed token in the path is the credential.
public_router = APIRouter(tags=["feeds"])

ICALENDAR = "text/calendar; charset=utf-8"


@router.post(
    "/calendars/{calendar_id}/feed-tokens",
    status_code=status.HTTP_201_CREATED,
    response_model=FeedTokenCreated,
    responses=problem_responses(CalendarNotFound, Forbidden, TooManyFeedTokens),
)
async def create_feed_token(
    calendar_id: uuid.UUID, data: FeedTokenCreate, session: SessionDep, principal: PrincipalDep
) -> FeedTokenCreated:
    """Make a feed URL for the calendar, to subscribe to from Outlook or Google Calendar.
    The token and its path are in this response only (the service keeps a hash). Anyone who
    reads the calendar may make one; with `include_subtree` the feed also shows the districts
    below (on the company-wide calendar, every district: only for someone who reads them all).
    Anyone holding the URL sees the feed until the token is revoked."""
    scope = await scope_of(session, principal)
    return await feeds.create_token(session, scope, calendar_id, data)


@router.get(
    "/calendars/{calendar_id}/feed-tokens",
    response_model=Page[FeedTokenOut],
    responses=problem_responses(CalendarNotFound, InvalidCursor),
)
async def list_feed_tokens(
    calendar_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    include_revoked: Annotated[bool, Query(description="Also list revoked tokens")] = False,
) -> Page[FeedTokenOut]:
    """The calendar's feed tokens, newest first, without their secrets: every token for a
    manager of the calendar's district (the central team on the company-wide calendar), the
    caller's own for anyone else."""
    scope = await scope_of(session, principal)
    items, last = await feeds.list_tokens(
        session, scope, calendar_id, page, include_revoked=include_revoked
    )
    return Page(items=items, next_cursor=encode_cursor(last) if last else None)


@router.delete(
    "/calendars/{calendar_id}/feed-tokens/{token_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(CalendarNotFound, FeedTokenNotFound),
)
async def revoke_feed_token(
    calendar_id: uuid.UUID, token_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> Response:
    """Revoke a feed token: its URL answers 404 from now on. By its creator or a manager of
    the calendar's district (the central team on the company-wide calendar). Revoking it
    again changes nothing."""
    scope = await scope_of(session, principal)
    await feeds.revoke(session, scope, calendar_id, token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@public_router.get(
    "/feeds/{token}.ics",
    response_class=Response,
    responses={
        200: {
            "description": "The calendar as RFC 5545 iCalendar",
            "content": {"text/calendar": {"schema": {"type": "string"}}},
        },
        304: {"description": "The client's copy (If-None-Match) is current"},
        **problem_responses(FeedNotFound),
    },
)
async def calendar_feed(
    token: str,
    session: SessionDep,
    if_none_match: Annotated[str | None, Header(max_length=2000)] = None,
) -> Response:
    """The calendar's posts from 90 days back to 400 days ahead as an iCalendar feed, one
    event per post (publication time, title, status, accounts). Authenticated by the token in
    the path; an unknown or revoked token is 404. Answers 304 to a client whose copy
    (`If-None-Match` with the feed's `ETag`) is current."""
    feed = await feeds.render(session, token, if_none_match)
    headers = {
        "ETag": feed.etag,
        # The URL is a credential: no shared cache keeps it, and a revocation shows at once.
        "Cache-Control": "private, no-cache",
    }
    if feed.body is None:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(
        content=feed.body,
        media_type=ICALENDAR,
        headers={**headers, "Content-Disposition": 'inline; filename="chorus.ics"'},
    )
