"""Outside reviewers (an agency, outside counsel): invited to one step through a single-use,
expiring link, without an account.

Outside review is a property of the policy step, copied into the request's plan when it opens
(``request_steps.outside_review``), so a later policy change never alters a request in
flight:
- ``none`` (a step that does not say otherwise): nobody may invite to it (409);
- ``advisory``: the answer is advice, kept on the invite and shown to the step's approvers on
  the request (``advisory_answers``) and in its history; it is never a decision, so it meets
  no quorum and closes nothing, whatever it says;
- ``counted``: the answer is recorded by ``requests.record_decision`` as the decider
  ``external:<email>`` (``via="external"``) and counts towards the step's quorum like any
  other decision.

Who invites: someone eligible to decide that step (``requests.eligibility``: the step's role
there or above, a delegation, an escalation), never the request's author, nor a delegate
standing in for the author (403). Otherwise anyone able to reach the step could multiply
deciders with addresses they control; and the author could approve their own work through
people they picked. The link carries ``secrets.token_urlsafe(32)``, shown once; only its
sha256 is kept, so a leaked database leaks no working link.

The link then answers 410 Gone, as does an expired or revoked one; a token never issued is
404. Answering takes the invite's row lock first (then the request's), so two answers through
one link record one answer; nothing else locks in the other order. An answer when the step no
longer awaits decisions (decided, request closed or superseded) is 409 and leaves the link
unused.

Invites, their revocation and advisory answers are written to the request's history. Anyone
who reads the request sees its invites; managers of its district, and whoever sent it, revoke
an invite.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.districts import MANAGER_ROLES, Scope
from chassis.errors import Conflict, Forbidden, NotFound, Problem
from chassis.openapi import PublicLinks
from chassis.pagination import Page, PageRequest, keyset_page
from services.approvals.access import tree
from services.approvals.models import ApprovalRequest, RequestHistory, RequestStep, ReviewInvite
from services.approvals.requests import repository as requests_repository
from services.approvals.requests.service import (
    Decider,
    StepNotActive,
    requests,
    require_open,
)
from services.approvals.reviews import repository
from services.approvals.reviews.schemas import (
    InviteCreate,
    InviteCreated,
    InviteOut,
    PublicReview,
    ReviewDecisionCreate,
    ReviewDecisionOut,
)
from services.approvals.vocabulary import OutsideReviewMode, RequestStatus, StepStatus, Via

PUBLIC_PATH = "/public/reviews/{token}"
# Enough for a few firms and a reviewer's second address; more is a sign of a script.
MAX_PENDING_INVITES_PER_STEP = 20
# What token_urlsafe(32) makes; anything else cannot be a token and is not looked up.
TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{43}$")


class StepNotFound(NotFound):
    type_slug = "request-step-not-found"
    title = "Request step not found"


class InviteNotFound(NotFound):
    type_slug = "review-invite-not-found"
    title = "Review invite not found"


class ReviewNotFound(NotFound):
    type_slug = "review-not-found"
    title = "Review link not found"


class ReviewGone(Problem):
    status = 410
    type_slug = "review-link-gone"
    title = "This review link no longer works"


class NotAManager(Forbidden):
    type_slug = "invite-needs-manager"
    title = "Only a manager of the request's district, or the inviter, revokes a link"


class NotAnApprover(Forbidden):
    type_slug = "invite-needs-eligible-approver"
    title = "Only an approver of the step invites outside reviewers to it"


class NoOutsideReview(Conflict):
    type_slug = "step-takes-no-outside-reviewers"
    title = "This step takes no outside reviewers"


class InviteExists(Conflict):
    type_slug = "review-invite-exists"
    title = "This reviewer already has a working link to this step"


class TooManyInvites(Conflict):
    type_slug = "too-many-review-invites"
    title = "Too many working links to this step"


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class _Link:
    invite: ReviewInvite
    now: datetime


def _require_awaiting(request: ApprovalRequest, step: RequestStep, why_not: str) -> None:
    """409 unless the request is open and `step` is the one being decided (`why_not` ends the
    detail when it is not)."""
    require_open(request)
    if step.status != StepStatus.ACTIVE:
        raise StepNotActive(
            f"Step {step.position} is {step.status}; {why_not}.",
            current_position=request.current_position,
        )


def _history(
    request_id: uuid.UUID, action: str, actor: str, details: dict[str, Any]
) -> RequestHistory:
    return RequestHistory(request_id=request_id, action=action, actor=actor, details=details)


class ReviewService:
    # Managing invites (authenticated) ----------------------------------------------------

    async def invite(
        self,
        session: AsyncSession,
        scope: Scope,
        request_id: uuid.UUID,
        position: int,
        data: InviteCreate,
        links: PublicLinks,
    ) -> InviteCreated:
        request = await requests.get_visible(session, scope, request_id)
        # The step's row lock: concurrent invites to one step are counted one after another.
        step = await requests_repository.get_step(session, request.id, position, lock=True)
        if step is None:
            raise StepNotFound(f"Request {request.id} has no step {position}.")
        _require_awaiting(request, step, "only the step being decided takes reviewers")
        if step.outside_review == OutsideReviewMode.NONE:
            raise NoOutsideReview(
                f"Step {position} ({step.name!r}) takes no outside reviewers: its policy step "
                "does not accept them.",
            )
        inviter = await requests.eligibility(session, scope, step, author=request.author)
        if inviter is None:
            raise NotAnApprover(
                f"Inviting to step {position} needs the role {step.role} on {step.district_id} "
                "or above it (or a delegation from someone who holds it).",
                role=step.role,
                district_id=step.district_id,
            )
        requests.refuse_author(request, inviter)
        pending = await repository.list_working_emails(session, request.id, position)
        if data.reviewer_email in pending:
            raise InviteExists(
                f"{data.reviewer_email} already has a working link to this step; revoke it to "
                "send a new one."
            )
        if len(pending) >= MAX_PENDING_INVITES_PER_STEP:
            raise TooManyInvites(
                f"Step {position} has {MAX_PENDING_INVITES_PER_STEP} working links; revoke some."
            )
        token = secrets.token_urlsafe(32)
        now = await repository.database_now(session)
        invite = ReviewInvite(
            id=uuid.uuid4(),
            request_id=request.id,
            position=position,
            token_hash=token_hash(token),
            reviewer_name=data.reviewer_name,
            reviewer_email=data.reviewer_email,
            created_by=scope.principal.sub,
            expires_at=now + timedelta(hours=data.expires_in_hours),
        )
        session.add(invite)
        await session.flush()
        session.add(
            _history(
                request.id,
                "reviewer_invited",
                scope.principal.sub,
                {
                    "invite_id": str(invite.id),
                    "position": position,
                    "reviewer_name": invite.reviewer_name,
                    "reviewer_email": invite.reviewer_email,
                    "expires_at": invite.expires_at.isoformat(),
                    "outside_review": step.outside_review,
                    "via": inviter.via,
                    "acting_for": inviter.acting_for,
                },
            )
        )
        await session.flush()
        await session.refresh(invite)
        return InviteCreated(
            **InviteOut.model_validate(invite).model_dump(exclude={"status"}),
            token=token,
            url_path=PUBLIC_PATH.format(token=token),
            url=links.to(PUBLIC_PATH.format(token=token)),
        )

    async def list_invites(
        self,
        session: AsyncSession,
        scope: Scope,
        request_id: uuid.UUID,
        page: PageRequest,
        *,
        position: int | None = None,
    ) -> Page[InviteOut]:
        """The request's invites (of one step, or all), newest first."""
        request = await requests.get_visible(session, scope, request_id)
        rows = await repository.list_invites(
            session,
            request.id,
            position=position,
            page=page,
        )
        return keyset_page(
            rows, page, key=lambda i: (i.created_at, i.id), item=InviteOut.model_validate
        )

    async def revoke(
        self, session: AsyncSession, scope: Scope, request_id: uuid.UUID, invite_id: uuid.UUID
    ) -> None:
        """The link stops working (410). Revoking again, or a link already used, changes
        nothing: an answer given stands."""
        request = await requests.get_visible(session, scope, request_id)
        invite = await repository.lock_invite(session, request.id, invite_id)
        if invite is None:
            raise InviteNotFound(f"No review invite {invite_id} on this request.")
        path = await tree.path_of(session, request.district_id)
        manages = path is not None and scope.has_role(path, MANAGER_ROLES)
        if not (manages or invite.created_by == scope.principal.sub):
            raise NotAManager(
                f"Revoking a reviewer's link needs a manager role on {request.district_id} or "
                "above it, or to have sent it."
            )
        if invite.revoked_at is not None or invite.used_at is not None:
            return
        invite.revoked_at = func.now()
        session.add(
            _history(
                request.id,
                "review_invite_revoked",
                scope.principal.sub,
                {
                    "invite_id": str(invite.id),
                    "position": invite.position,
                    "reviewer_email": invite.reviewer_email,
                },
            )
        )
        await session.flush()

    # The reviewer's side (the token is the credential) -----------------------------------

    async def view(self, session: AsyncSession, token: str) -> PublicReview:
        link = await self._link(session, token, lock=False)
        invite = link.invite
        request = await requests_repository.get_request(session, invite.request_id)
        step = await requests_repository.get_step(session, invite.request_id, invite.position)
        # The invite's foreign key cascades from both: they exist while the invite does.
        assert request is not None
        assert step is not None
        return PublicReview(
            reviewer_name=invite.reviewer_name,
            request_id=request.id,
            title=request.title,
            snapshot=request.snapshot,
            step_position=step.position,
            step_name=step.name,
            expires_at=invite.expires_at,
            open=request.status == RequestStatus.OPEN and step.status == StepStatus.ACTIVE,
        )

    async def answer(
        self, session: AsyncSession, token: str, data: ReviewDecisionCreate
    ) -> ReviewDecisionOut:
        link = await self._link(session, token, lock=True)
        invite = link.invite
        request = await requests_repository.get_request(session, invite.request_id)
        assert request is not None
        step = await requests_repository.get_step(session, invite.request_id, invite.position)
        assert step is not None
        reviewer = f"external:{invite.reviewer_email}"
        if step.outside_review == OutsideReviewMode.COUNTED:
            decision = await requests.record_decision(
                session,
                request,
                invite.position,
                Decider(person=reviewer, via=Via.EXTERNAL),
                data.outcome,
                data.comment,
                None,  # single use is the invite's lock and used_at, not a key
            )
            await session.flush()
            await session.refresh(decision)
            answered_at = decision.decided_at
        else:
            answered_at = await self._advise(session, request, step, invite, reviewer, data)
        invite.used_at = link.now
        invite.outcome = data.outcome
        invite.comment = data.comment
        await session.flush()
        return ReviewDecisionOut(
            outcome=data.outcome,
            comment=data.comment,
            decided_at=answered_at,
            request_status=request.status,
            counted=step.outside_review == OutsideReviewMode.COUNTED,
        )

    async def _advise(
        self,
        session: AsyncSession,
        request: ApprovalRequest,
        step: RequestStep,
        invite: ReviewInvite,
        reviewer: str,
        data: ReviewDecisionCreate,
    ) -> datetime:
        """An advisory answer: written to the history for the approvers, never a decision.
        Taken under the request's row lock, as decisions are, so it is refused (409) once
        the step no longer awaits decisions. A step that takes no outside review (an invite
        older than the rule) takes no answer either."""
        await requests_repository.relock_request(session, request)
        await session.refresh(step)
        _require_awaiting(request, step, "it no longer awaits answers")
        if step.outside_review != OutsideReviewMode.ADVISORY:
            raise NoOutsideReview(f"Step {step.position} ({step.name!r}) takes no outside review.")
        now = await repository.database_now(session)
        session.add(
            _history(
                request.id,
                "advice_given",
                reviewer,
                {
                    "invite_id": str(invite.id),
                    "position": step.position,
                    "step": step.key,
                    "outcome": data.outcome,
                    **({"comment": data.comment} if data.comment else {}),
                },
            )
        )
        await session.flush()
        return now

    async def _link(self, session: AsyncSession, token: str, *, lock: bool) -> _Link:
        """The invite behind a working token: 404 if never issued, 410 once used, revoked or
        expired (by the database's clock)."""
        if not TOKEN_SHAPE.match(token):
            raise ReviewNotFound("No such review link.")
        # Locked, it waits for a concurrent answer through the same link, then sees its used_at.
        row = await repository.find_by_token_hash(session, token_hash(token), lock=lock)
        if row is None:
            raise ReviewNotFound("No such review link.")
        invite, now = row
        if invite.used_at is not None:
            raise ReviewGone("This link has been used; it works once.", reason="used")
        if invite.revoked_at is not None:
            raise ReviewGone("This link has been withdrawn.", reason="revoked")
        if invite.expires_at <= now:
            raise ReviewGone("This link has expired.", reason="expired")
        return _Link(invite, now)


reviews = ReviewService()
