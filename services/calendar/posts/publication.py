"""Publication: what happens to a post once approvals has decided, and until the scheduler
says how it went.

- ``decide``: approvals' decision (approved, changes_requested, rejected; draft when the
  request expired undecided). A decision on a post no longer in review, or whose content
  changed since (its content hash differs), is stale and changes nothing. The decider's
  comment on changes requested or a rejection (why, for an expired request) becomes the
  post's ``status_reason``.
- ``schedule_or_hold``: an approved post schedules itself at once; if something blocks it
  (``posts.blockers``: the publish time passed, a blackout, an asset's rights, an account no
  longer official), it stays approved with the reason and ``post.schedule_blocked`` says why.
- holds (``unschedule_in_blackout``, ``unschedule_for_asset_rights`` through
  ``update_asset``): scheduled posts put back to approved when a blackout is declared over
  them or an asset's rights now end before them.
- ``record_publication``: the scheduler's callback for one account; the post is published
  when every account is, and publish_failed as soon as one fails.

Every status change still goes through the one status machine, ``posts.apply_status``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from chassis.districts import Scope
from services.calendar.access import tree
from services.calendar.assets.schemas import AssetUpdate
from services.calendar.assets.service import assets
from services.calendar.events import (
    AssetRightsCause,
    BlackoutCause,
    PostPublished,
    PostScheduleBlocked,
    PostUnscheduled,
)
from services.calendar.models import Asset, Blackout, Post, messaging
from services.calendar.posts import repository
from services.calendar.posts.service import TRANSITIONS, S, identity, posts, rights_reason

# Decisions whose comment (or, for an expired request, why it expired) becomes the post's
# status_reason, until its next status change.
EXPLAINED_OUTCOMES = frozenset({S.CHANGES_REQUESTED, S.REJECTED, S.DRAFT})


class PublicationService:
    async def schedule_or_hold(self, session: AsyncSession, post: Post, actor: str) -> None:
        """An approved post schedules itself; if something blocks it, it stays approved with
        the reason, and ``post.schedule_blocked`` says why."""
        path = await tree.path_of(session, post.district_id)
        reasons = await posts.blockers(session, post, path)
        if not reasons:
            await posts.apply_status(session, post, "scheduled", actor)
            return
        post.status_reason = " ".join(reasons)
        await session.flush()
        await posts.record(
            session, post, "schedule_blocked", actor, None, None, {"reasons": reasons}
        )
        await posts.publish(session, PostScheduleBlocked(**identity(post), reasons=reasons))

    async def unschedule_in_blackout(
        self, session: AsyncSession, blackout: Blackout, path: str | None, actor: str
    ) -> int:
        """Put on hold every post scheduled inside the blackout just declared, in its district
        at `path` and below (None: every post). Returns how many (see ``_unschedule``)."""
        held = await repository.lock_scheduled_between(
            session, blackout.starts_at, blackout.ends_at, path
        )
        return await self._unschedule(
            session,
            held,
            actor,
            reason=f"Blackout: {blackout.reason}.",
            cause=BlackoutCause.model_validate(blackout, from_attributes=True),
            history={"blackout_id": str(blackout.id)},
        )

    async def update_asset(
        self, session: AsyncSession, scope: Scope, asset_id: uuid.UUID, data: AssetUpdate
    ) -> Asset:
        """Change an asset (``assets.update``); when its usage rights changed, put on hold the
        scheduled posts using it that would now go out after the rights end, in the same
        transaction. Here rather than in the asset library: posts depend on the library, not
        the other way round."""
        asset = await assets.update(session, scope, asset_id, data)
        if "rights_expire_at" in data.model_fields_set:
            await self.unschedule_for_asset_rights(session, asset, scope.principal.sub)
        return asset

    async def unschedule_for_asset_rights(
        self, session: AsyncSession, asset: Asset, actor: str
    ) -> int:
        """After an asset's usage rights changed: put on hold every scheduled post using it
        whose publish time is at or after the rights' end. Returns how many."""
        if asset.rights_expire_at is None:
            return 0
        held = await repository.lock_scheduled_using_asset(
            session, asset.id, asset.rights_expire_at
        )
        return await self._unschedule(
            session,
            held,
            actor,
            reason=rights_reason(asset),
            cause=AssetRightsCause.model_validate(asset, from_attributes=True),
            history={"asset_id": str(asset.id)},
        )

    async def _unschedule(
        self,
        session: AsyncSession,
        held: Sequence[Post],
        actor: str,
        *,
        reason: str,
        cause: BlackoutCause | AssetRightsCause,
        history: dict[str, Any],
    ) -> int:
        """Put scheduled posts, locked FOR UPDATE by the caller, on hold: scheduled ->
        approved with `reason` as ``status_reason``, a history entry and one
        ``post.unscheduled`` each (``cause`` describes what holds them).

        Why ``post.unscheduled`` rather than ``post.schedule_blocked``: a scheduler already
        holds the publication that ``post.scheduled`` handed it and must drop it, while
        ``schedule_blocked`` means "never handed over" and a scheduler has no reason to
        subscribe to it. A separate type says "cancel what you hold" without that scheduler
        having to read status fields; it still carries everything people need to be told
        (author, assignee, district, title, the cause). The approval still holds (the content
        did not change), so it is not ``post.withdrawn``, which would make approvals withdraw
        its request.

        The posts are locked in id order (two holds never deadlock), and their events go out
        in one ``publish_many``: a year-long company-wide blackout may hold thousands of
        posts, and one aggregate lock per event could exhaust PostgreSQL's lock table."""
        if not held:
            return 0
        blackout = cause if isinstance(cause, BlackoutCause) else None
        asset = cause if isinstance(cause, AssetRightsCause) else None
        hold = "blackout" if blackout else "asset_rights"
        now = datetime.now(UTC)
        for post in held:
            posts.check_transition(post, "approved")
            post.status = "approved"
            post.status_reason = reason
            post.updated_at = now
        await session.flush()
        details = {"reason": reason, "hold": hold, **history}
        await repository.add_history_many(
            session,
            [
                {
                    "post_id": post.id,
                    "action": "unscheduled",
                    "actor": actor,
                    "from_status": "scheduled",
                    "to_status": "approved",
                    "details": details,
                }
                for post in held
            ],
        )
        paths = {
            district_id: await tree.path_of(session, district_id)
            for district_id in {post.district_id for post in held}
        }
        await messaging.publisher.publish_many(
            session,
            [
                (
                    str(post.id),
                    PostUnscheduled(
                        **identity(post),
                        previous_status=S.SCHEDULED,
                        reason=reason,
                        district_path=paths[post.district_id],
                        title=post.title,
                        author=post.author,
                        assignee=post.assignee,
                        publish_at=post.publish_at,
                        approved_hash=post.approved_hash,
                        reasons=[reason],
                        hold=hold,
                        blackout=blackout,
                        asset=asset,
                    ),
                )
                for post in held
            ],
        )
        return len(held)

    # Decisions and callbacks (from events) -----------------------------------------------

    async def decide(
        self,
        session: AsyncSession,
        post_id: uuid.UUID,
        outcome: str,
        *,
        content_hash_decided: str | None,
        decided_by: str | None,
        comment: str | None,
    ) -> bool:
        """Apply approvals' decision (approved, changes_requested, rejected; draft when the
        request expired undecided); False when it is stale (the post moved on or changed)."""
        post = await repository.find_post(session, post_id, lock=True)
        if post is None or post.status != "in_review":
            return False
        if content_hash_decided is not None and content_hash_decided != post.content_hash:
            return False
        actor = decided_by or "approvals"
        await posts.apply_status(session, post, outcome, actor, reason=comment)
        if outcome == "approved":
            await self.schedule_or_hold(session, post, actor)
        elif outcome in EXPLAINED_OUTCOMES:
            # The author reads why on the post itself, not only in its history.
            post.status_reason = comment
            await session.flush()
        return True

    async def record_publication(
        self,
        session: AsyncSession,
        post_id: uuid.UUID,
        account_id: uuid.UUID,
        *,
        external_id: str | None,
        permalink: str | None,
        published_at: datetime | None,
        error: str | None,
    ) -> bool:
        """The scheduler published (or failed to publish) the post on one account."""
        post = await repository.find_post(session, post_id, lock=True)
        if post is None:
            return False
        target = await repository.lock_target(session, post_id, account_id)
        if target is None:
            return False
        failed = error is not None
        if target.publication_status == "published" and not failed:
            return False  # the same callback again
        target.publication_status = "failed" if failed else "published"
        target.external_id = external_id or target.external_id
        target.permalink = permalink or target.permalink
        target.published_at = None if failed else (published_at or datetime.now(UTC))
        target.error = error
        await session.flush()
        actor = "scheduler"
        if failed:
            if S.PUBLISH_FAILED in TRANSITIONS[S(post.status)]:
                await posts.apply_status(
                    session,
                    post,
                    "publish_failed",
                    actor,
                    reason=error,
                    failed_account=account_id,
                )
            return True
        await posts.publish(
            session,
            PostPublished(
                **identity(post),
                account_id=account_id,
                platform=target.platform,
                external_id=target.external_id,
                permalink=target.permalink,
                published_at=target.published_at,
                campaign_id=post.campaign_id,
            ),
        )
        pending = await repository.count_unpublished_targets(session, post_id)
        if not pending and S.PUBLISHED in TRANSITIONS[S(post.status)]:
            post.published_at = target.published_at
            await posts.apply_status(session, post, "published", actor)
        return True


publication = PublicationService()
