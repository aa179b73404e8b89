"""The events the calendar service publishes on ``chorus.calendar.events``, one model each.

Every event is about one post: its subject, and so its Kafka key, is the post id, and its data
starts with the post's identity as it stands after the event (``PostEvent``: id, district,
calendar, status, version, content hash). The status changes approvals follows also carry
``subject_kind: "post"``, the previous status and the reason (``PostStatusChanged``).

- post.submitted: draft -> in_review, with everything approvals routes and snapshots;
- post.withdrawn: back to draft after submission (an edit, a reopening, an expired request);
- post.approved, post.changes_requested, post.rejected: approvals' decisions applied;
- post.scheduled: the full content per target account, for the scheduler;
- post.schedule_blocked: approved, but something keeps it from being scheduled;
- post.unscheduled: a scheduled post put on hold (a blackout declared over it, or an asset's
  usage rights now ending before it);
- post.published (one per account), post.publish_failed: the scheduler's reports;
- post.cancelled.

This module declares only the published models and ``catalog``; it imports nothing of the
service but its vocabulary (``models`` imports ``catalog`` from here). The consumers of the
events calendar reads are in ``consumers``.
"""

from __future__ import annotations

import uuid
from typing import Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from chassis.events import EventCatalog, EventData
from services.calendar.vocabulary import PostStatus

S = PostStatus  # short, for the Literal statuses below


class EventPart(BaseModel):
    """A nested object of an event's data: frozen and closed, like the event itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class PostEvent(EventData):
    """The post's identity, first in every calendar event."""

    id: uuid.UUID = Field(description="The post; also the event's subject")
    district_id: str | None = Field(description="The post's district; null: company-wide")
    calendar_id: uuid.UUID
    status: PostStatus = Field(description="The post's status after the event")
    version: int = Field(description="The post's version; each edit adds one")
    content_hash: str = Field(
        description="sha256 of what an approver approves: content, targets, publish time and"
        " campaign"
    )


class PostStatusChanged(PostEvent):
    """A status change approvals follows: the previous status and why."""

    subject_kind: Literal["post"] = Field(
        default="post", description="What approvals calls a post among its subjects"
    )
    previous_status: PostStatus
    reason: str | None = Field(description="Why, as the actor gave it (a comment, an error)")


class MediaUse(EventPart):
    """An asset of the library used by a post, with the alt text of this use."""

    asset_id: uuid.UUID
    alt_text: str | None


class VariantContent(EventPart):
    """What differs on one platform; a null field falls back to the post's master content."""

    platform: str
    text: str | None
    link: str | None
    media: list[MediaUse] | None


class PostSubmitted(PostEvent):
    """A post was submitted for approval (draft -> in_review), past lint and its checks.

    Carries what approvals needs to route the post and to keep a snapshot of what it approves:
    the content (master and per-platform variants), the platforms and accounts it targets,
    its campaign's tags, the district path, and the publish time (always in the future at
    submission). An approval decision names ``content_hash``; an edit changes the hash and
    withdraws the submission (``post.withdrawn``)."""

    published_as = "post.submitted"

    status: Literal[S.IN_REVIEW]
    subject_kind: Literal["post"] = "post"
    kind: Literal["post"]
    district_path: str | None = Field(description="The district's path; null: company-wide")
    title: str
    text: str
    link: str | None
    variants: list[VariantContent]
    media: list[MediaUse]
    platforms: list[str] = Field(description="The target accounts' platforms, sorted, distinct")
    account_ids: list[uuid.UUID] = Field(description="The target accounts, sorted")
    campaign_id: uuid.UUID | None
    campaign_tags: list[str] = Field(description="The campaign's tags; empty without one")
    publish_at: AwareDatetime
    timezone: str = Field(description="The IANA zone the author planned in")
    author: str
    submitted_at: AwareDatetime


class PostWithdrawn(PostStatusChanged):
    """A submitted post went back to draft: its approval, asked or given, no longer holds.

    Emitted when a post in review, approved, scheduled or whose publication failed is edited
    (its content hash changed) or reopened by a caller, or when its approval request expired
    undecided. Approvals withdraws its request; a post that was scheduled is no longer to be
    published."""

    published_as = "post.withdrawn"

    status: Literal[S.DRAFT]
    previous_status: Literal[S.IN_REVIEW, S.APPROVED, S.SCHEDULED, S.PUBLISH_FAILED]


class PostApproved(PostStatusChanged):
    """Approvals' approval was applied to the post (in_review -> approved).

    ``content_hash`` is the approved content's. The post schedules itself at once: a
    ``post.scheduled`` or a ``post.schedule_blocked`` follows in the same transaction."""

    published_as = "post.approved"

    status: Literal[S.APPROVED]


class PostChangesRequested(PostStatusChanged):
    """Approvals asked for changes (in_review -> changes_requested); ``reason`` is the
    decider's comment."""

    published_as = "post.changes_requested"

    status: Literal[S.CHANGES_REQUESTED]


class PostRejected(PostStatusChanged):
    """Approvals rejected the post (in_review -> rejected, final); ``reason`` is the
    decider's comment."""

    published_as = "post.rejected"

    status: Literal[S.REJECTED]


class PostCancelled(PostStatusChanged):
    """The post was cancelled (final), from any open status; ``reason`` is the caller's
    comment. Approvals withdraws an open request; a scheduled post is no longer to be
    published."""

    published_as = "post.cancelled"

    status: Literal[S.CANCELLED]


class ScheduledMedia(EventPart):
    """A media file of a scheduled post, where to download it and how to check it."""

    asset_id: uuid.UUID
    url: str = Field(description="Where the bytes are downloaded, under the calendar's API")
    content_type: str | None = Field(description="null: the asset is no longer in the library")
    sha256: str | None = Field(description="null: the asset is no longer in the library")
    alt_text: str | None = Field(description="This use's alt text, else the asset's")


class ScheduledTarget(EventPart):
    """What goes out on one account: the post's content as resolved for its platform."""

    account_id: uuid.UUID
    platform: str
    handle: str | None = Field(description="null: the account is unknown to the calendar")
    profile_url: str | None
    text: str
    link: str | None
    media: list[ScheduledMedia]


class PostScheduled(PostEvent):
    """An approved post was handed to the scheduler (approved or publish_failed -> scheduled).

    Everything needed to publish, per target account, so a scheduler needs no call back:
    the content as resolved for each account's platform, the media with their download
    paths and checksums, and the publish time (in the future, outside any blackout, every
    target official). ``post.unscheduled``, ``post.withdrawn`` and ``post.cancelled`` take
    it back; the scheduler reports through its callbacks, which calendar publishes as
    ``post.published`` and ``post.publish_failed``."""

    published_as = "post.scheduled"

    status: Literal[S.SCHEDULED]
    title: str
    publish_at: AwareDatetime = Field(description="The instant to publish, in UTC")
    timezone: str = Field(description="The IANA zone the author planned in")
    local_publish_at: AwareDatetime = Field(description="publish_at in that zone")
    campaign_id: uuid.UUID | None
    approved_hash: str = Field(description="The content hash approvals approved")
    targets: list[ScheduledTarget]


class PostScheduleBlocked(PostEvent):
    """An approved post could not be scheduled, and stays approved with the reasons.

    Reasons: the publish time passed, a blackout, an asset whose usage rights end before the
    publish time, a target account no longer official. The post was never handed to the
    scheduler; a retry (``POST /posts/{id}/status`` with ``scheduled``) checks again."""

    published_as = "post.schedule_blocked"

    status: Literal[S.APPROVED]
    reasons: list[str] = Field(description="Every reason, in words, for the people told")


class BlackoutCause(EventPart):
    """The blackout declared over a scheduled post."""

    id: uuid.UUID
    district_id: str | None = Field(description="null: a company-wide blackout")
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    reason: str


class AssetRightsCause(EventPart):
    """An asset the post uses whose usage rights now end at or before its publish time."""

    id: uuid.UUID
    title: str
    rights_expire_at: AwareDatetime


def _absent(value: object) -> bool:
    return value is None


class PostUnscheduled(PostStatusChanged):
    """A scheduled post was put on hold (scheduled -> approved): the scheduler must drop it.

    Emitted when a blackout is declared over its publish time (``hold`` "blackout", with
    ``blackout``), or when an asset it uses gets usage rights ending at or before its
    publish time (``hold`` "asset_rights", with ``asset``); only the cause named by ``hold``
    is present. The approval still holds (``approved_hash``): a retry schedules it again once
    the cause is gone. It carries what the people to tell need: author, assignee, district,
    title, the reasons."""

    published_as = "post.unscheduled"

    status: Literal[S.APPROVED]
    previous_status: Literal[S.SCHEDULED]
    reason: str
    district_path: str | None = Field(description="The district's path; null: company-wide")
    title: str
    author: str
    assignee: str | None
    publish_at: AwareDatetime
    approved_hash: str = Field(description="The content hash approvals approved")
    reasons: list[str]
    hold: Literal["blackout", "asset_rights"]
    # Only the hold's cause is sent, never the other as null.
    blackout: BlackoutCause | None = Field(default=None, exclude_if=_absent)
    asset: AssetRightsCause | None = Field(default=None, exclude_if=_absent)

    @model_validator(mode="after")
    def _the_cause_of_the_hold(self) -> Self:
        causes = {"blackout": self.blackout, "asset_rights": self.asset}
        if causes.pop(self.hold) is None or any(c is not None for c in causes.values()):
            raise ValueError(f"a {self.hold} hold describes its cause, and only that one")
        return self


class PostPublished(PostEvent):
    """The scheduler published the post on one account (one event per account).

    The post itself becomes ``published`` once every account is; ``status`` is the post's at
    this account's report."""

    published_as = "post.published"

    account_id: uuid.UUID
    platform: str
    external_id: str | None = Field(description="The platform's id of the publication")
    permalink: str | None
    published_at: AwareDatetime
    campaign_id: uuid.UUID | None


class PostPublishFailed(PostStatusChanged):
    """The scheduler failed to publish the post on one account (scheduled -> publish_failed).

    ``reason`` and ``error`` are the scheduler's error. Another account failing while the
    post is already publish_failed publishes nothing more; a retry schedules it again."""

    published_as = "post.publish_failed"

    status: Literal[S.PUBLISH_FAILED]
    account_id: uuid.UUID
    error: str


catalog = EventCatalog(
    "calendar",
    [
        PostSubmitted,
        PostWithdrawn,
        PostApproved,
        PostChangesRequested,
        PostRejected,
        PostCancelled,
        PostScheduled,
        PostScheduleBlocked,
        PostUnscheduled,
        PostPublished,
        PostPublishFailed,
    ],
)
