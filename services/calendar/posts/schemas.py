"""Request and response models of posts, and the content that lint and the content hash see."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from chassis.instants import in_range
from services.calendar.schemas import refuse_null
from services.calendar.styleguide.violations import Violation
from services.calendar.vocabulary import ApprovalStatus, PostStatus, PublicationStatus

MAX_TEXT = 20_000
MAX_MEDIA = 20
MAX_VARIANTS = 20
MAX_TARGETS = 100

PlatformKey = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
Person = Annotated[str, Field(min_length=1, max_length=200)]


def _http_url(value: str) -> str:
    if not value.startswith(("https://", "http://")) or len(value) > 2000 or " " in value:
        raise ValueError("a link is an http(s) URL of at most 2000 characters, without spaces")
    return value


Link = Annotated[str, AfterValidator(_http_url)]


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{value!r} is not an IANA time zone") from exc
    return value


TimeZone = Annotated[str, Field(max_length=64), AfterValidator(_zone)]


def in_utc(value: datetime | None) -> datetime | None:
    """An instant given with its offset, in UTC; a time without an offset is ambiguous."""
    if value is None:
        return None
    if value.utcoffset() is None:
        raise ValueError("give the time with its UTC offset, e.g. 2027-01-10T09:00:00+01:00")
    return in_range(value).astimezone(UTC)


class MediaRef(BaseModel):
    """An asset of the library used by a post, with the alt text of this use."""

    model_config = ConfigDict(extra="forbid")

    asset_id: uuid.UUID
    alt_text: str | None = Field(default=None, max_length=1500)


class Variant(BaseModel):
    """What differs on one platform; a field left out (None) falls back to the master."""

    model_config = ConfigDict(extra="forbid")

    platform: PlatformKey
    text: str | None = Field(default=None, max_length=MAX_TEXT)
    link: Link | None = None
    media: list[MediaRef] | None = Field(default=None, max_length=MAX_MEDIA)


class PostContent(BaseModel):
    """The content of a post: what approvals sees, hashes and approves."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=300)
    text: str = Field(default="", max_length=MAX_TEXT)
    link: Link | None = None
    media: list[MediaRef] = Field(default_factory=list, max_length=MAX_MEDIA)
    variants: list[Variant] = Field(default_factory=list, max_length=MAX_VARIANTS)

    @field_validator("variants")
    @classmethod
    def _one_variant_per_platform(cls, variants: list[Variant]) -> list[Variant]:
        platforms = [v.platform for v in variants]
        if len(set(platforms)) != len(platforms):
            raise ValueError("one variant per platform")
        return variants

    def variant_for(self, platform: str) -> Variant | None:
        return next((v for v in self.variants if v.platform == platform), None)

    def resolved(self, platform: str) -> ResolvedContent:
        """The content as it goes out on `platform`: the variant over the master."""
        variant = self.variant_for(platform)
        return ResolvedContent(
            platform=platform,
            text=variant.text if variant and variant.text is not None else self.text,
            link=variant.link if variant and variant.link is not None else self.link,
            media=variant.media if variant and variant.media is not None else self.media,
        )


class ResolvedContent(BaseModel):
    platform: str
    text: str
    link: str | None
    media: list[MediaRef]


class PostPlan(BaseModel):
    """Where and when a post goes out, and who works on it."""

    model_config = ConfigDict(extra="forbid")

    account_ids: list[uuid.UUID] = Field(default_factory=list, max_length=MAX_TARGETS)
    publish_at: datetime | None = Field(
        default=None, description="The instant to publish (with an offset; stored in UTC)"
    )
    timezone: TimeZone = Field(default="UTC", description="IANA zone the post is planned in")
    campaign_id: uuid.UUID | None = None
    assignee: Person | None = None
    due_at: datetime | None = Field(default=None, description="When the draft is due")

    @field_validator("publish_at", "due_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return in_utc(value)

    @field_validator("account_ids")
    @classmethod
    def _distinct(cls, ids: list[uuid.UUID]) -> list[uuid.UUID]:
        return list(dict.fromkeys(ids))


class PostCreate(PostContent, PostPlan):
    calendar_id: uuid.UUID | None = Field(
        default=None, description="The calendar; give it or district_id"
    )
    district_id: str | None = Field(
        default=None, max_length=100, description="Post on this district's calendar"
    )
    kind: Literal["post"] = "post"


class PostUpdate(BaseModel):
    """A partial edit: fields left out keep their value. Editing the content of a post in
    review, approved or scheduled sends it back to draft (its approval no longer matches)."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=300)
    text: str | None = Field(default=None, max_length=MAX_TEXT)
    link: Link | None = None
    media: list[MediaRef] | None = Field(default=None, max_length=MAX_MEDIA)
    variants: list[Variant] | None = Field(default=None, max_length=MAX_VARIANTS)
    account_ids: list[uuid.UUID] | None = Field(default=None, max_length=MAX_TARGETS)
    publish_at: datetime | None = None
    timezone: TimeZone | None = None
    campaign_id: uuid.UUID | None = None
    assignee: Person | None = None
    due_at: datetime | None = None
    version: int | None = Field(
        default=None, description="The version you edited; 409 if the post changed since"
    )

    @field_validator("publish_at", "due_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return in_utc(value)

    # A post always has these; None only stands for "left out", so a null sent is refused
    # rather than kept or cleared.
    _not_null = refuse_null(
        "title",
        "text",
        "media",
        "variants",
        message="cannot be null; leave the field out to keep its value",
    )


class Publication(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    account_id: uuid.UUID
    platform: str
    handle: str | None = None
    publication_status: PublicationStatus
    external_id: str | None
    permalink: str | None
    published_at: datetime | None
    error: str | None


class ApprovalStepOut(BaseModel):
    """A step of the approval request's plan."""

    model_config = ConfigDict(from_attributes=True)

    position: int = Field(description="Its place in the plan, from 0")
    key: str
    name: str
    role: str = Field(description="The approver role that decides it")
    district_id: str = Field(description="Where that role is held (there or above it)")


class Approver(BaseModel):
    """Who may decide: anyone holding `role` on `district_id` or a district above it."""

    role: str
    district_id: str


class ApprovalOut(BaseModel):
    """The approval request of the post's latest submission, as approvals' events told
    calendar (moments after each happened)."""

    request_id: uuid.UUID = Field(description="The request at approvals (`GET /requests/{id}`)")
    status: ApprovalStatus = Field(
        description="open while its steps are decided; then granted, rejected, "
        "changes_requested, expired, superseded (a newer submission) or withdrawn (an edit, "
        "a reopening, a cancellation)"
    )
    step: ApprovalStepOut | None = Field(
        description="The step being decided now; null once the request is closed"
    )
    waiting_for: list[Approver] = Field(
        description="Who must act now: the current step's role on its district, and the "
        "escalation's role once its deadline passed (never the post's author); empty once "
        "the request is closed"
    )
    steps: list[ApprovalStepOut] = Field(description="The whole plan, in order")


class PostOut(PostContent):
    model_config = ConfigDict(from_attributes=True, extra="ignore")

    id: uuid.UUID
    calendar_id: uuid.UUID
    district_id: str | None
    kind: str
    account_ids: list[uuid.UUID]
    publish_at: datetime | None
    timezone: str
    local_publish_at: str | None = Field(
        default=None, description="publish_at in the post's time zone (ISO 8601)"
    )
    campaign_id: uuid.UUID | None
    author: str
    assignee: str | None
    due_at: datetime | None
    status: PostStatus
    status_reason: str | None = Field(
        description="Why the post is where it is: the approver's comment after changes were "
        "requested or a rejection, why an approval expired, or what holds an approved post "
        "back from scheduling (a blackout, an account, an asset's usage rights)"
    )
    approval: ApprovalOut | None = Field(
        default=None,
        description="The approval request of its latest submission: who must act, at which "
        "step. Null for a post never submitted, and for the moments between a submission and "
        "approvals opening its request",
    )
    allowed_transitions: list[str] = Field(default_factory=list)
    version: int
    content_hash: str
    approved_hash: str | None
    submitted_at: datetime | None
    published_at: datetime | None
    publications: list[Publication] = Field(default_factory=list)
    expired_assets: list[uuid.UUID] = Field(
        default_factory=list, description="Assets used whose usage rights have expired"
    )
    created_at: datetime
    updated_at: datetime
    warnings: list[Violation] = Field(
        default_factory=list,
        description="The style-guide warnings this write found (errors refuse the write "
        "instead): a submission (`POST /posts/{id}/submit`, or `/status` with `in_review`) "
        "lints the post; drafting, editing and other status changes do not, and leave it "
        "empty. Reads always leave it empty (warnings are not stored): "
        "`GET /posts/{id}/lint` gives the report of the post as it stands.",
    )


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The statuses a caller may ask for (posts.service.CALLER_TARGETS); the others follow from
    # approvals' decisions and the scheduler.
    status: Literal[
        PostStatus.IN_REVIEW, PostStatus.DRAFT, PostStatus.CANCELLED, PostStatus.SCHEDULED
    ] = Field(
        description="in_review submits; draft reopens; cancelled cancels; scheduled retries"
        " scheduling an approved post or one whose publication failed"
    )
    comment: str | None = Field(default=None, max_length=2000)


class HistoryEntry(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    action: str
    actor: str
    from_status: str | None
    to_status: str | None
    details: dict[str, object]
    at: datetime
