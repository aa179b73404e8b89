"""iCalendar feeds: tokens are managed through the authenticated API (`router`); the feed
itself is served on `public_router` (under /public, no principal), where the token in the path
is the credential."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status

from chassis.database import SessionDep
from chassis.districts import DistrictNotFound, ScopeDep
from chassis.errors import Forbidden, problem_responses
from chassis.openapi import PublicLinksDep
from chassis.pagination import InvalidCursor, Page, PageDep
from services.calendar.calendars.service import CalendarNotFound
from services.calendar.feeds.schemas import (
    FeedTokenCreate,
    FeedTokenCreated,
    FeedTokenFilter,
    FeedTokenOut,
    FeedTokenRenew,
)
from services.calendar.feeds.service import (
    FeedNotFound,
    FeedTokenLifetimeTooLong,
    FeedTokenNotFound,
    FeedTokenRevoked,
    TokenLifetime,
    TooManyFeedTokens,
    feeds,
)
from services.calendar.schemas import district_query
from services.calendar.settings import CalendarSettings

router = APIRouter(tags=["feeds"])
# Served under /public (no principal): the feed token in the path is the credential.
public_router = APIRouter(tags=["feeds"])

ICALENDAR = "text/calendar; charset=utf-8"


def token_lifetime(request: Request) -> TokenLifetime:
    settings: CalendarSettings = request.app.state.settings
    return TokenLifetime(settings.feed_token_default_days, settings.feed_token_max_days)


LifetimeDep = Annotated[TokenLifetime, Depends(token_lifetime)]


@router.post(
    "/calendars/{calendar_id}/feed-tokens",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(
        CalendarNotFound, Forbidden, TooManyFeedTokens, FeedTokenLifetimeTooLong
    ),
)
async def create_feed_token(
    calendar_id: uuid.UUID,
    data: FeedTokenCreate,
    session: SessionDep,
    scope: ScopeDep,
    lifetime: LifetimeDep,
    links: PublicLinksDep,
) -> FeedTokenCreated:
    """Make a feed URL for the calendar, to subscribe to from Outlook or Google Calendar.
    The token and its path are in this response only (the service keeps a hash and the first
    characters). Anyone who reads the calendar may make one; with `include_subtree` the feed
    also shows the districts below (on the company-wide calendar, every district: only for
    someone who reads them all). Anyone holding the URL sees the feed until the token expires
    (`expires_in_days`, by default 90, at most 365: the service's settings) or is revoked;
    `POST /feed-tokens/{id}/renew` extends it."""
    return await feeds.create_token(session, scope, calendar_id, data, lifetime, links)


@router.get(
    "/calendars/{calendar_id}/feed-tokens",
    responses=problem_responses(CalendarNotFound, InvalidCursor),
)
async def list_feed_tokens(
    calendar_id: uuid.UUID,
    session: SessionDep,
    scope: ScopeDep,
    page: PageDep,
    include_revoked: Annotated[bool, Query(description="Also list revoked tokens")] = False,
) -> Page[FeedTokenOut]:
    """The calendar's feed tokens, newest first, without their secrets (expired ones too,
    so they can be renewed): every token for a manager of the calendar's district (the
    central team on the company-wide calendar), the caller's own for anyone else."""
    return await feeds.list_tokens(
        session, scope, calendar_id, page, include_revoked=include_revoked
    )


@router.delete(
    "/calendars/{calendar_id}/feed-tokens/{token_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(CalendarNotFound, FeedTokenNotFound),
)
async def revoke_feed_token(
    calendar_id: uuid.UUID, token_id: uuid.UUID, session: SessionDep, scope: ScopeDep
) -> Response:
    """Revoke a feed token: its URL answers 404 from now on. By its creator or a manager of
    the calendar's district (the central team on the company-wide calendar). Revoking it
    again changes nothing."""
    await feeds.revoke(session, scope, calendar_id, token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/feed-tokens",
    responses=problem_responses(DistrictNotFound, Forbidden, InvalidCursor),
)
async def list_managed_feed_tokens(
    session: SessionDep,
    scope: ScopeDep,
    page: PageDep,
    district_id: Annotated[
        str | None,
        district_query(
            "Tokens of this district's calendar and those below it (needs a "
            "manager role there); left out: of every calendar the caller manages",
        ),
    ] = None,
    status_: Annotated[
        FeedTokenFilter,
        Query(alias="status", description="active (default), expired, revoked or all"),
    ] = FeedTokenFilter.ACTIVE,
    created_by: Annotated[
        str | None,
        Query(min_length=1, max_length=200, description="Only the tokens this user made"),
    ] = None,
) -> Page[FeedTokenOut]:
    """The feed tokens of a district subtree's calendars, newest first, for its managers
    (the company-wide calendar's for the central team): who made each, when, when it expires
    and was last used, and its first characters; never the token itself. A district the
    caller cannot read is 404; one they read but do not manage, 403."""
    return await feeds.list_managed(
        session, scope, page, district_id=district_id, which=status_, created_by=created_by
    )


@router.post(
    "/feed-tokens/{token_id}/renew",
    responses=problem_responses(
        FeedTokenNotFound, FeedTokenRevoked, FeedTokenLifetimeTooLong, Forbidden
    ),
)
async def renew_feed_token(
    token_id: uuid.UUID,
    data: FeedTokenRenew,
    session: SessionDep,
    scope: ScopeDep,
    lifetime: LifetimeDep,
) -> FeedTokenOut:
    """Make the token work for `expires_in_days` from now (the default, 90, when left out;
    at most 365), whether it has expired or not; the URL stays the same. By its creator while
    they still read the calendar, or a manager of the calendar's district (the central team
    on the company-wide calendar); anyone else gets 404. A revoked token is 409."""
    return await feeds.renew(session, scope, token_id, data, lifetime)


@router.delete(
    "/feed-tokens/{token_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(FeedTokenNotFound),
)
async def revoke_feed_token_by_id(
    token_id: uuid.UUID, session: SessionDep, scope: ScopeDep
) -> Response:
    """Revoke a feed token by its id: by its creator or a manager of its calendar's district
    (the central team on the company-wide calendar); anyone else gets 404. Its URL answers
    404 from now on; revoking it again changes nothing."""
    await feeds.revoke_by_id(session, scope, token_id)
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
    the path; an unknown, revoked or expired token is 404. Answers 304 to a client whose copy
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
