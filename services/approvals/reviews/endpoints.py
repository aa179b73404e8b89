"""Outside reviewers: invites are managed through the authenticated API (`router`); the
reviewer's page and answer are on `public_router` (served under /public, no principal), where
the single-use token in the path is the credential."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from chassis.database import SessionDep
from chassis.districts import ScopeDep
from chassis.errors import problem_responses
from chassis.openapi import PublicLinksDep
from chassis.pagination import InvalidCursor, Page, PageDep
from services.approvals.requests.service import (
    AlreadyDecided,
    NoOutsideDecisions,
    RequestClosed,
    RequestNotFound,
    SelfApproval,
    StepNotActive,
)
from services.approvals.reviews.schemas import (
    InviteCreate,
    InviteCreated,
    InviteOut,
    PublicReview,
    ReviewDecisionCreate,
    ReviewDecisionOut,
)
from services.approvals.reviews.service import (
    InviteExists,
    InviteNotFound,
    NoOutsideReview,
    NotAManager,
    NotAnApprover,
    ReviewGone,
    ReviewNotFound,
    StepNotFound,
    TooManyInvites,
    reviews,
)

router = APIRouter(tags=["reviews"])
# Served under /public (no principal): the single-use invite token is the credential.
public_router = APIRouter(tags=["reviews"])

Position = Annotated[int, Path(ge=0, le=10_000, description="The step's position in the plan")]
Token = Annotated[str, Path(max_length=200, description="The token of the reviewer's link")]
# The token is in the URL: no cache keeps the page, and no link on it leaks it as a referrer.
PRIVATE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


@router.post(
    "/requests/{request_id}/steps/{position}/invites",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(
        RequestNotFound,
        StepNotFound,
        NotAnApprover,
        SelfApproval,
        RequestClosed,
        StepNotActive,
        NoOutsideReview,
        InviteExists,
        TooManyInvites,
    ),
)
async def invite_reviewer(
    request_id: uuid.UUID,
    position: Position,
    data: InviteCreate,
    session: SessionDep,
    scope: ScopeDep,
    links: PublicLinksDep,
) -> InviteCreated:
    """Invite an outside reviewer (an agency, outside counsel) to the step being decided,
    without an account. The token and the link's path are in this response only: send them
    to the reviewer. The link works once, until `expires_in_hours` (default 72).

    The step must be active and its policy step must accept outside reviewers (else 409).
    Where the policy step counts outside answers, the answer is the decision of
    `external:<reviewer_email>`; otherwise it is advice shown to the approvers on the request
    (`advisory_answers`). Only someone who may decide the step invites (403), and never the
    request's author, also not as someone's delegate nor through one (403 self-approval)."""
    return await reviews.invite(session, scope, request_id, position, data, links)


@router.get(
    "/requests/{request_id}/invites",
    responses=problem_responses(RequestNotFound, InvalidCursor),
)
async def list_invites(
    request_id: uuid.UUID,
    session: SessionDep,
    scope: ScopeDep,
    page: PageDep,
    position: Annotated[
        int | None, Query(ge=0, le=10_000, description="Only the invites to this step")
    ] = None,
) -> Page[InviteOut]:
    """The request's outside-reviewer invites, newest first, with their status (pending,
    used, expired, revoked) and never their tokens. For anyone who reads the request."""
    return await reviews.list_invites(session, scope, request_id, page, position=position)


@router.delete(
    "/requests/{request_id}/invites/{invite_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(RequestNotFound, InviteNotFound, NotAManager),
)
async def revoke_invite(
    request_id: uuid.UUID, invite_id: uuid.UUID, session: SessionDep, scope: ScopeDep
) -> Response:
    """Withdraw a reviewer's link: it answers 410 from now on. An answer already given
    stands; revoking again changes nothing. Needs a manager role on the request's district or
    above it, or to have sent the invite."""
    await reviews.revoke(session, scope, request_id, invite_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@public_router.get(
    "/reviews/{token}",
    responses=problem_responses(ReviewNotFound, ReviewGone),
)
async def view_review(token: Token, session: SessionDep, response: Response) -> PublicReview:
    """What an outside reviewer is asked to decide: the request's title and content as
    submitted, the step and until when the link works. Authenticated by the token in the
    path: 404 for a token never issued, 410 once it is used, revoked or expired."""
    response.headers.update(PRIVATE_HEADERS)
    return await reviews.view(session, token)


@public_router.post(
    "/reviews/{token}/decision",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(
        ReviewNotFound,
        ReviewGone,
        RequestClosed,
        StepNotActive,
        AlreadyDecided,
        NoOutsideReview,
        NoOutsideDecisions,
    ),
)
async def answer_review(
    token: Token, data: ReviewDecisionCreate, session: SessionDep, response: Response
) -> ReviewDecisionOut:
    """The outside reviewer's answer: approve, reject or request changes (the last two with
    a comment). On a step whose policy counts outside answers it is a decision (`counted`
    true); otherwise it is advice for the approvers and decides nothing. The link works
    once: afterwards it answers 410. If the step no longer awaits decisions (already decided,
    request closed or superseded) the answer is refused with 409 and the link stays unused."""
    response.headers.update(PRIVATE_HEADERS)
    return await reviews.answer(session, token, data)
