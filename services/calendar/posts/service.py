"""Posts: drafting, submission and the status machine. What follows approval (decisions,
scheduling or holding, holds, the scheduler's callbacks) is in ``publication``.

The status machine (TRANSITIONS) is the only way a status changes, through ``apply_status``,
which records the history and publishes the event of the new status in the same transaction
(holds, which may move thousands of posts at once, go through ``publication._unschedule``:
the same machine, history and events, written in bulk):

    draft -> in_review -> approved -> scheduled -> published | publish_failed
    in_review -> changes_requested -> draft; in_review -> rejected
    in_review | approved | scheduled | publish_failed -> draft (an edit: the approval no
    longer matches, ``post.withdrawn`` tells approvals); anything open -> cancelled
    scheduled -> approved (put on hold: a blackout declared over its publish time, or an
    asset's usage rights now ending before it; ``post.unscheduled`` tells the scheduler to
    drop it, and the approval still holds)

Callers move a post to in_review (submit), draft, cancelled and scheduled (retry); approvals'
decisions move it to approved, changes_requested and rejected, and an approval schedules it at
once; the scheduler's callbacks (through the webhooks service) mark it published or failed;
declaring a blackout puts the scheduled posts inside it back to approved.

A post on hold is an approved post with a ``status_reason``, whether it was refused at approval
(``post.schedule_blocked``) or unscheduled later (``post.unscheduled``): one state, so one way
out, the retry (``POST /posts/{id}/status`` with ``scheduled``), which checks the blockers again.

The content hash covers what an approver approves: the content, the target accounts, the
publish time and the campaign. Editing any of them after submission sends the post back to
draft; a decision whose hash no longer matches the post is stale and ignored.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from chassis.districts import Scope
from chassis.errors import Conflict, NotFound, Unprocessable
from chassis.pagination import Page, PageRequest, keyset_page
from services.calendar.access import require_write, tree
from services.calendar.accounts.service import targetable
from services.calendar.assets import service as asset_service
from services.calendar.blackouts.repository import clashes
from services.calendar.calendars import service as calendar_service
from services.calendar.events import (
    PostApproved,
    PostCancelled,
    PostChangesRequested,
    PostEvent,
    PostPublishFailed,
    PostRejected,
    PostScheduled,
    PostStatusChanged,
    PostSubmitted,
    PostWithdrawn,
    ScheduledMedia,
    ScheduledTarget,
)
from services.calendar.models import (
    Account,
    Asset,
    Post,
    messaging,
)
from services.calendar.posts import repository
from services.calendar.posts.approval import approval_requests
from services.calendar.posts.schemas import (
    HistoryEntry,
    MediaRef,
    PostContent,
    PostCreate,
    PostOut,
    PostUpdate,
    Publication,
)
from services.calendar.styleguide.lint import strict
from services.calendar.styleguide.schemas import LintReport, LintSubject, Violation
from services.calendar.styleguide.service import style_guide
from services.calendar.vocabulary import PostStatus

S = PostStatus  # short, for the tables below
TRANSITIONS: dict[PostStatus, frozenset[PostStatus]] = {
    S.DRAFT: frozenset({S.IN_REVIEW, S.CANCELLED}),
    S.IN_REVIEW: frozenset({S.APPROVED, S.CHANGES_REQUESTED, S.REJECTED, S.DRAFT, S.CANCELLED}),
    S.CHANGES_REQUESTED: frozenset({S.DRAFT, S.CANCELLED}),
    S.APPROVED: frozenset({S.SCHEDULED, S.DRAFT, S.CANCELLED}),
    # -> approved: put on hold (a blackout declared over it); the approval still holds.
    S.SCHEDULED: frozenset({S.PUBLISHED, S.PUBLISH_FAILED, S.APPROVED, S.DRAFT, S.CANCELLED}),
    S.PUBLISH_FAILED: frozenset({S.SCHEDULED, S.DRAFT, S.CANCELLED}),
    S.PUBLISHED: frozenset(),
    S.REJECTED: frozenset(),
    S.CANCELLED: frozenset(),
}
# What a caller may ask for; the rest follow from approvals' decisions and the scheduler.
CALLER_TARGETS = frozenset({S.IN_REVIEW, S.DRAFT, S.CANCELLED, S.SCHEDULED})
# Statuses whose content may still change (an edit in review or later returns to draft).
EDITABLE = frozenset(
    {S.DRAFT, S.IN_REVIEW, S.CHANGES_REQUESTED, S.APPROVED, S.SCHEDULED, S.PUBLISH_FAILED}
)
# Leaving these for draft withdraws what approvals holds or has approved.
UNDER_APPROVAL = frozenset({S.IN_REVIEW, S.APPROVED, S.SCHEDULED, S.PUBLISH_FAILED})
# The event of each status whose change tells no more than the change itself. Submission,
# scheduling and a failed publication carry more (``_status_event``); draft is a withdrawal
# when it leaves UNDER_APPROVAL, and published has one ``post.published`` per account instead.
CHANGE_EVENTS: dict[PostStatus, type[PostStatusChanged]] = {
    S.APPROVED: PostApproved,
    S.CHANGES_REQUESTED: PostChangesRequested,
    S.REJECTED: PostRejected,
    S.CANCELLED: PostCancelled,
}
SUBJECT_KIND = "post"


class PostNotFound(NotFound):
    type_slug = "post-not-found"
    title = "Post not found"


class CalendarRequired(Unprocessable):
    type_slug = "calendar-required"
    title = "Say which calendar the post is on"


class IllegalTransition(Unprocessable):
    type_slug = "illegal-status-transition"
    title = "That status change is not allowed"


class PostNotEditable(Conflict):
    type_slug = "post-not-editable"
    title = "The post can no longer be edited"


class StaleVersion(Conflict):
    type_slug = "stale-version"
    title = "The post changed since you read it"


class NotReadyToSubmit(Unprocessable):
    type_slug = "not-ready-to-submit"
    title = "The post is not ready to submit"


class LintFailed(Unprocessable):
    type_slug = "lint-failed"
    title = "The post breaks the style guide"


class SchedulingBlocked(Unprocessable):
    type_slug = "scheduling-blocked"
    title = "The post cannot be scheduled"


def content_of(post: Post) -> PostContent:
    return PostContent.model_validate(post, from_attributes=True)


def content_hash(
    content: PostContent,
    account_ids: Sequence[uuid.UUID],
    publish_at: datetime | None,
    campaign_id: uuid.UUID | None,
) -> str:
    """sha256 of what an approver approves, in a canonical JSON form."""
    canonical = {
        "content": content.model_dump(mode="json"),
        "account_ids": sorted(str(a) for a in account_ids),
        "publish_at": publish_at.astimezone(UTC).isoformat() if publish_at else None,
        "campaign_id": str(campaign_id) if campaign_id else None,
    }
    raw = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()


def _asset_ids(content: PostContent) -> list[uuid.UUID]:
    ids = [m.asset_id for m in content.media]
    for variant in content.variants:
        ids.extend(m.asset_id for m in variant.media or [])
    return list(dict.fromkeys(ids))


def rights_reason(asset: Asset) -> str:
    ends = asset.rights_expire_at
    when = f"{ends.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if ends else "an unknown time"
    return f"Asset {asset.title} ({asset.id}): usage rights end at {when}, before the publish time."


def _local(at: datetime | None, zone: str) -> str | None:
    return at.astimezone(ZoneInfo(zone)).isoformat() if at else None


def identity(post: Post) -> dict[str, Any]:
    """The post's identity, the fields of ``PostEvent`` every event of the post starts with."""
    return {
        "id": post.id,
        "district_id": post.district_id,
        "calendar_id": post.calendar_id,
        "status": post.status,
        "version": post.version,
        "content_hash": post.content_hash,
    }


class PostService:
    # Reading -----------------------------------------------------------------------------

    async def get_visible(
        self, session: AsyncSession, scope: Scope, post_id: uuid.UUID, *, lock: bool = False
    ) -> tuple[Post, str | None]:
        """The post and its district path, locked FOR UPDATE with `lock`, or 404 when the
        caller cannot read it."""
        return await tree.load_scoped(
            session, scope, Post, post_id, PostNotFound, shared_down=False, for_update=lock
        )

    async def out(
        self, session: AsyncSession, post: Post, *, warnings: Sequence[Violation] = ()
    ) -> PostOut:
        """The post as the API shows it; `warnings`: the lint warnings of the write that
        answers with it (a read has none)."""
        targets = await repository.list_targets_with_accounts(session, post.id)
        expired = await asset_service.expired_assets(session, [post.id])
        publications = [
            Publication.model_validate(target).model_copy(
                update={"handle": account.handle if account else None}
            )
            for target, account in targets
        ]
        return PostOut.model_validate(
            {
                **{c.key: getattr(post, c.key) for c in Post.__table__.columns},
                "account_ids": [t.account_id for t, _ in targets],
                "local_publish_at": _local(post.publish_at, post.timezone),
                "allowed_transitions": sorted(TRANSITIONS[S(post.status)] & CALLER_TARGETS),
                "publications": publications,
                "expired_assets": expired.get(post.id, []),
                "warnings": list(warnings),
                "approval": await approval_requests.out(session, post.id),
            }
        )

    async def get(self, session: AsyncSession, scope: Scope, post_id: uuid.UUID) -> PostOut:
        post, _ = await self.get_visible(session, scope, post_id)
        return await self.out(session, post)

    async def history(
        self, session: AsyncSession, scope: Scope, post_id: uuid.UUID, page: PageRequest
    ) -> Page[HistoryEntry]:
        """The post's history, oldest first (404 when the caller cannot read the post)."""
        await self.get_visible(session, scope, post_id)
        (after,) = page.after_key(int) or (0,)
        rows = await repository.list_history(session, post_id, after=after, limit=page.fetch)
        return keyset_page(rows, page, key=lambda row: (row.id,), item=HistoryEntry.model_validate)

    async def check(self, session: AsyncSession, scope: Scope, post_id: uuid.UUID) -> LintReport:
        """The lint report of a post the caller reads, as it stands."""
        post, path = await self.get_visible(session, scope, post_id)
        return await self.lint(session, post, path)

    # Drafting ----------------------------------------------------------------------------

    async def create(self, session: AsyncSession, scope: Scope, data: PostCreate) -> PostOut:
        if data.calendar_id is not None:
            calendar, path = await calendar_service.get_visible(session, scope, data.calendar_id)
            if data.district_id is not None and data.district_id != calendar.district_id:
                raise CalendarRequired("calendar_id and district_id name different calendars.")
        elif data.district_id is not None:
            path = await tree.district_path(session, scope, data.district_id)
            calendar = await calendar_service.calendar_for(session, data.district_id)
        else:
            raise CalendarRequired("Give calendar_id, or district_id for the district's calendar.")
        require_write(scope, path, "Drafting posts")
        content = PostContent.model_validate(data.model_dump(include=set(PostContent.model_fields)))
        accounts = await targetable(session, path, data.account_ids)
        if data.campaign_id is not None:
            await calendar_service.usable_campaign(session, scope, path, data.campaign_id)
        await asset_service.attachable(session, scope, path, _asset_ids(content))
        post = Post(
            id=uuid.uuid4(),
            calendar_id=calendar.id,
            district_id=calendar.district_id,
            **content.model_dump(mode="json"),
            # The plan but its accounts, which are rows of their own (the post's targets).
            **data.model_dump(
                include={"kind", "publish_at", "timezone", "campaign_id", "assignee", "due_at"}
            ),
            author=scope.principal.sub,
            status="draft",
            version=1,
            content_hash=content_hash(content, data.account_ids, data.publish_at, data.campaign_id),
        )
        session.add(post)
        await session.flush()
        await repository.add_targets(session, post, accounts)
        await repository.add_assets(session, post.id, _asset_ids(content))
        await self.record(session, post, "created", scope.principal.sub, None, "draft")
        return await self.out(session, post)

    async def update(
        self, session: AsyncSession, scope: Scope, post_id: uuid.UUID, data: PostUpdate
    ) -> PostOut:
        post, path = await self.get_visible(session, scope, post_id, lock=True)
        require_write(scope, path, "Editing posts")
        if post.status not in EDITABLE:
            raise PostNotEditable(f"A {post.status} post can no longer be edited.")
        if data.version is not None and data.version != post.version:
            raise StaleVersion(
                f"You edited version {data.version}; the post is at version {post.version}.",
                current_version=post.version,
            )
        given = data.model_dump(exclude_unset=True, exclude={"version"})
        current = content_of(post)
        content = PostContent.model_validate(
            {
                **current.model_dump(),
                **{k: v for k, v in given.items() if k in PostContent.model_fields},
            }
        )
        if "account_ids" in given and given["account_ids"] is not None:
            account_ids = list(dict.fromkeys(data.account_ids or []))
            accounts: list[Account] | None = await targetable(session, path, account_ids)
        else:
            account_ids = await repository.list_target_ids(session, post.id)
            accounts = None
        if given.get("campaign_id") is not None and given["campaign_id"] != post.campaign_id:
            await calendar_service.usable_campaign(session, scope, path, given["campaign_id"])
        new_assets = set(_asset_ids(content)) - set(_asset_ids(current))
        await asset_service.attachable(session, scope, path, sorted(new_assets))

        changed = sorted(given)
        post.title, post.text, post.link = content.title, content.text, content.link
        post.media = [m.model_dump(mode="json") for m in content.media]
        post.variants = [v.model_dump(mode="json") for v in content.variants]
        for field in ("publish_at", "timezone", "campaign_id", "assignee", "due_at"):
            if field in given and not (field == "timezone" and given[field] is None):
                setattr(post, field, given[field])
        previous_hash = post.content_hash
        post.content_hash = content_hash(content, account_ids, post.publish_at, post.campaign_id)
        post.version += 1
        post.updated_at = datetime.now(UTC)
        await session.flush()
        if accounts is not None:
            await repository.delete_targets(session, post.id)
            await repository.add_targets(session, post, accounts)
        elif "publish_at" in given:
            await repository.move_targets(session, post.id, post.publish_at)
        await repository.delete_assets(session, post.id)
        await repository.add_assets(session, post.id, _asset_ids(content))
        await self.record(
            session, post, "edited", scope.principal.sub, None, None, {"fields": changed}
        )
        content_changed = post.content_hash != previous_hash
        if content_changed and post.status in UNDER_APPROVAL | {"changes_requested"}:
            await self.apply_status(
                session, post, "draft", scope.principal.sub, reason="edited after submission"
            )
        await session.refresh(post)
        return await self.out(session, post)

    # Lint and submission -----------------------------------------------------------------

    async def lint(self, session: AsyncSession, post: Post, path: str | None) -> LintReport:
        targets = await repository.list_target_platforms(session, post.id)
        subject = LintSubject(
            content=content_of(post),
            platforms=sorted({platform for _, platform in targets}),
            account_ids=[account_id for account_id, _ in targets],
            publish_at=post.publish_at,
            post_id=post.id,
        )
        return await style_guide.lint(session, path, subject)

    async def submit(self, session: AsyncSession, scope: Scope, post_id: uuid.UUID) -> PostOut:
        """Submit the post (see ``_submit``): the post as it is now, with the lint warnings
        of the submission in its ``warnings``."""
        post, warnings = await self._submit(session, scope, post_id)
        return await self.out(session, post, warnings=warnings)

    async def _submit(
        self, session: AsyncSession, scope: Scope, post_id: uuid.UUID
    ) -> tuple[Post, list[Violation]]:
        """Draft -> in_review, after the checks approvals relies on. Lint errors refuse the
        submission (422 with every violation), and so do the assets whose usage rights end
        before the publish time (a lint warning while drafting); warnings come back with the
        post."""
        post, path = await self.get_visible(session, scope, post_id, lock=True)
        require_write(scope, path, "Submitting posts")
        self.check_transition(post, "in_review")
        account_ids = await repository.list_target_ids(session, post.id)
        missing = []
        if post.publish_at is None:
            missing.append("publish_at")
        elif post.publish_at <= datetime.now(UTC):
            raise NotReadyToSubmit("The publish time has passed; pick a later one.")
        if not account_ids:
            missing.append("account_ids")
        if missing:
            raise NotReadyToSubmit(
                f"Before submitting, give: {', '.join(missing)}.", missing=missing
            )
        # The accounts may have changed in the inventory since the draft named them.
        await targetable(session, path, account_ids)
        # What lint only warns about while drafting (an asset's rights ending before the
        # publish time) refuses the submission.
        report = strict(await self.lint(session, post, path))
        if report.errors:
            raise LintFailed(
                f"{report.errors} error(s) against the style guide.",
                violations=[v.model_dump(mode="json") for v in report.violations],
            )
        post.submitted_hash = post.content_hash
        post.submitted_at = datetime.now(UTC)
        await self.apply_status(session, post, "in_review", scope.principal.sub)
        # The previous submission's request is closed; this one's arrives from approvals.
        await repository.delete_approval(session, post.id)
        return post, [v for v in report.violations if v.severity == "warning"]

    # Status ------------------------------------------------------------------------------

    async def change_status(
        self,
        session: AsyncSession,
        scope: Scope,
        post_id: uuid.UUID,
        status: str,
        comment: str | None,
    ) -> PostOut:
        """A caller's status change: submit (in_review, as ``submit``), reopen, cancel, retry
        scheduling."""
        if status == "in_review":
            return await self.submit(session, scope, post_id)
        post, path = await self.get_visible(session, scope, post_id, lock=True)
        require_write(scope, path, "Changing a post's status")
        self.check_transition(post, status)
        actor = scope.principal.sub
        if status == "scheduled":
            blocked = await self.blockers(session, post, path)
            if blocked:
                raise SchedulingBlocked(blocked[0], reasons=blocked)
            await self.apply_status(session, post, "scheduled", actor, reason=comment)
        else:
            await self.apply_status(session, post, status, actor, reason=comment)
        return await self.out(session, post)

    def check_transition(self, post: Post, status: str) -> None:
        allowed = TRANSITIONS[S(post.status)]
        if status not in allowed:
            raise IllegalTransition(
                f"A {post.status} post cannot become {status}.",
                current_status=post.status,
                allowed=sorted(allowed & CALLER_TARGETS),
            )

    async def apply_status(
        self,
        session: AsyncSession,
        post: Post,
        status: str,
        actor: str,
        *,
        reason: str | None = None,
        failed_account: uuid.UUID | None = None,
    ) -> None:
        """The one place a post's status changes: the rule, the history and the event.
        `failed_account`, with publish_failed, is the account whose publication failed
        (`reason` is the error)."""
        self.check_transition(post, status)
        previous = post.status
        post.status = status
        post.status_reason = None
        if status == "approved":
            post.approved_hash = post.content_hash
        if status == "draft":
            post.submitted_hash = None
            post.approved_hash = None
        post.updated_at = datetime.now(UTC)
        await session.flush()
        await self.record(
            session, post, "status_changed", actor, previous, status, {"reason": reason}
        )
        event = await self._status_event(
            session, post, S(previous), reason=reason, failed_account=failed_account
        )
        if event is not None:
            await self.publish(session, event)

    async def _status_event(
        self,
        session: AsyncSession,
        post: Post,
        previous: PostStatus,
        *,
        reason: str | None,
        failed_account: uuid.UUID | None,
    ) -> PostEvent | None:
        """The event of the post's new status, coming from `previous` (None: there is none)."""
        status = S(post.status)
        if status == S.DRAFT:
            if previous not in UNDER_APPROVAL:
                return None
            return PostWithdrawn(**identity(post), previous_status=previous, reason=reason)
        if status == S.IN_REVIEW:
            return await self.submission(session, post)
        if status == S.SCHEDULED:
            return await self.scheduling(session, post)
        if status == S.PUBLISH_FAILED:
            return PostPublishFailed(
                **identity(post),
                previous_status=previous,
                reason=reason,
                account_id=failed_account,
                error=reason,
            )
        changed = CHANGE_EVENTS.get(status)
        if changed is None:
            return None
        return changed(**identity(post), previous_status=previous, reason=reason)

    async def publish(self, session: AsyncSession, event: PostEvent) -> None:
        """Queue the post's event in the outbox, in the caller's transaction."""
        await messaging.publisher.publish(session, event, subject=str(event.id))

    async def record(
        self,
        session: AsyncSession,
        post: Post,
        action: str,
        actor: str,
        from_status: str | None,
        to_status: str | None,
        details: dict[str, Any] | None = None,
    ) -> None:
        await repository.add_history(
            session,
            post_id=post.id,
            action=action,
            actor=actor,
            from_status=from_status,
            to_status=to_status,
            details={k: v for k, v in (details or {}).items() if v is not None},
        )

    async def submission(self, session: AsyncSession, post: Post) -> PostSubmitted:
        """post.submitted: what approvals needs to route the post and snapshot it."""
        targets = await repository.list_target_platforms(session, post.id)
        campaign_tags: list[str] = []
        if post.campaign_id is not None:
            campaign_tags = await repository.find_campaign_tags(session, post.campaign_id)
        content = content_of(post).model_dump()
        return PostSubmitted(
            **identity(post),
            kind=post.kind,
            district_path=await tree.path_of(session, post.district_id),
            title=post.title,
            text=post.text,
            link=post.link,
            variants=content["variants"],
            media=content["media"],
            platforms=sorted({platform for _, platform in targets}),
            account_ids=sorted(account_id for account_id, _ in targets),
            campaign_id=post.campaign_id,
            campaign_tags=campaign_tags,
            publish_at=post.publish_at,
            timezone=post.timezone,
            author=post.author,
            submitted_at=datetime.now(UTC),
        )

    async def scheduling(self, session: AsyncSession, post: Post) -> PostScheduled:
        """post.scheduled: everything a scheduler needs to publish, per target account."""
        content = content_of(post)
        targets = await repository.list_targets_with_accounts(session, post.id)
        assets = await repository.find_assets(session, _asset_ids(content))

        def media(use: MediaRef) -> ScheduledMedia:
            asset = assets.get(use.asset_id)
            return ScheduledMedia(
                asset_id=use.asset_id,
                url=asset_service.content_path(use.asset_id),
                content_type=asset.content_type if asset else None,
                sha256=asset.sha256 if asset else None,
                alt_text=use.alt_text or (asset.alt_text if asset else None),
            )

        out = []
        for target, account in targets:
            resolved = content.resolved(target.platform)
            out.append(
                ScheduledTarget(
                    account_id=target.account_id,
                    platform=target.platform,
                    handle=account.handle if account else None,
                    profile_url=account.profile_url if account else None,
                    text=resolved.text,
                    link=resolved.link,
                    media=[media(use) for use in resolved.media],
                )
            )
        return PostScheduled(
            **identity(post),
            title=post.title,
            publish_at=post.publish_at,
            timezone=post.timezone,
            local_publish_at=post.publish_at.astimezone(ZoneInfo(post.timezone))
            if post.publish_at
            else None,
            campaign_id=post.campaign_id,
            approved_hash=post.approved_hash,
            targets=out,
        )

    # Scheduling --------------------------------------------------------------------------

    async def blockers(self, session: AsyncSession, post: Post, path: str | None) -> list[str]:
        """Why the post cannot be scheduled now (empty: it can)."""
        reasons: list[str] = []
        now = datetime.now(UTC)
        if post.publish_at is None or post.publish_at <= now:
            reasons.append("The publish time has passed.")
        elif blackouts := await clashes(session, path, post.publish_at):
            reasons.extend(f"Blackout: {b.reason}." for b in blackouts)
        for asset in await asset_service.rights_ending(session, post.id, post.publish_at or now):
            reasons.append(rights_reason(asset))
        for account_id, status, handle in await repository.list_target_statuses(session, post.id):
            if status != "official":
                reasons.append(f"Account {handle or account_id} is {status or 'unknown'}.")
        return reasons


posts = PostService()
