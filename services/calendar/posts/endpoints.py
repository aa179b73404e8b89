"""Posts: draft, edit, submit, cancel, reschedule, read with history.

Reading needs any role on the post's district (the company-wide calendar's posts: any grant);
drafting and changing a post needs contributor or manager there (the central team on the
company-wide calendar). Another district's post is 404. The range view (GET /posts) is in
``views``.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from chassis.database import SessionDep
from chassis.districts import DistrictNotFound, ScopeDep
from chassis.errors import Forbidden, problem_responses
from chassis.pagination import InvalidCursor, Page, PageDep
from services.calendar.accounts.service import TargetNotAllowed
from services.calendar.posts.schemas import (
    HistoryEntry,
    PostCreate,
    PostOut,
    PostUpdate,
    StatusChange,
)
from services.calendar.posts.service import (
    CalendarRequired,
    IllegalTransition,
    LintFailed,
    NotReadyToSubmit,
    PostNotEditable,
    PostNotFound,
    SchedulingBlocked,
    StaleVersion,
    posts,
)
from services.calendar.styleguide.schemas import LintReport

router = APIRouter(tags=["posts"])


@router.post(
    "/posts",
    status_code=status.HTTP_201_CREATED,
    summary="Draft a post",
    responses=problem_responses(Forbidden, DistrictNotFound, CalendarRequired, TargetNotAllowed),
)
async def create_post(data: PostCreate, session: SessionDep, scope: ScopeDep) -> PostOut:
    """Draft a post on a calendar (by `calendar_id`, or `district_id` for that district's
    calendar): master content, per-platform variants, target accounts (official accounts of
    the district or below it), publish time with its time zone, campaign, assignee and due
    date. Assets and the campaign must be usable by the post's district."""
    return await posts.create(session, scope, data)


@router.get(
    "/posts/{post_id}",
    summary="A post",
    responses=problem_responses(PostNotFound),
)
async def get_post(post_id: uuid.UUID, session: SessionDep, scope: ScopeDep) -> PostOut:
    """The post with its targets and how each publication went, the status changes the
    caller may ask for, and the assets whose usage rights have expired."""
    return await posts.get(session, scope, post_id)


@router.patch(
    "/posts/{post_id}",
    summary="Edit a post",
    responses=problem_responses(
        PostNotFound, Forbidden, PostNotEditable, StaleVersion, TargetNotAllowed
    ),
)
async def edit_post(
    post_id: uuid.UUID, data: PostUpdate, session: SessionDep, scope: ScopeDep
) -> PostOut:
    """Change some fields. Changing the content, targets, publish time or campaign of a post
    in review, approved or scheduled sends it back to draft (`post.withdrawn` tells
    approvals); pass `version` to refuse the edit if someone changed the post meanwhile."""
    return await posts.update(session, scope, post_id, data)


@router.post(
    "/posts/{post_id}/submit",
    summary="Submit a post for approval",
    responses=problem_responses(
        PostNotFound, Forbidden, IllegalTransition, NotReadyToSubmit, LintFailed, TargetNotAllowed
    ),
)
async def submit_post(post_id: uuid.UUID, session: SessionDep, scope: ScopeDep) -> PostOut:
    """Draft -> in_review, emitting `post.submitted` for approvals. Refused (422) when the
    publish time or targets are missing, a target is no longer official, or the style guide
    finds errors (each violation with its rule, severity and position). Answers the post,
    as every post write does, with the style guide's warnings in its `warnings`."""
    return await posts.submit(session, scope, post_id)


@router.post(
    "/posts/{post_id}/status",
    summary="Change a post's status",
    responses=problem_responses(
        PostNotFound,
        Forbidden,
        IllegalTransition,
        NotReadyToSubmit,
        LintFailed,
        SchedulingBlocked,
    ),
)
async def change_status(
    post_id: uuid.UUID, data: StatusChange, session: SessionDep, scope: ScopeDep
) -> PostOut:
    """`in_review` submits (as /submit), `draft` reopens a post (after changes were
    requested, or withdrawing it from review), `cancelled` cancels it, `scheduled` retries
    scheduling an approved post that was held (a blackout, an account) or whose publication
    failed. Other changes come from approvals and the scheduler; a change the status machine
    does not allow is 422 with the allowed ones. Answers the post; a submission puts the
    style guide's warnings in its `warnings`."""
    return await posts.change_status(session, scope, post_id, data.status, data.comment)


@router.get(
    "/posts/{post_id}/lint",
    summary="Check a post against the style guide",
    responses=problem_responses(PostNotFound),
)
async def lint_post(post_id: uuid.UUID, session: SessionDep, scope: ScopeDep) -> LintReport:
    """Every violation of the style guide (and blackout clashes and crowding) of the post as
    it stands, with rule, severity and position."""
    return await posts.check(session, scope, post_id)


@router.get(
    "/posts/{post_id}/history",
    summary="A post's timeline",
    responses=problem_responses(PostNotFound, InvalidCursor),
)
async def post_history(
    post_id: uuid.UUID, page: PageDep, session: SessionDep, scope: ScopeDep
) -> Page[HistoryEntry]:
    """Every edit and status change of the post, oldest first."""
    return await posts.history(session, scope, post_id, page)
