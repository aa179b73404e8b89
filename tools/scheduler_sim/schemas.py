"""The simulator's wire models.

Its own API and its callbacks speak Hootsuite's vocabulary in camelCase (``socialProfile``,
``scheduledSendTime``, ``mediaUrls``). Chorus's deliveries are read through models that
declare only the fields the simulator uses and ignore the rest, as any consumer of Chorus
events does: a new field in an event never breaks it.
"""

from __future__ import annotations

import uuid

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from tools.scheduler_sim.vocabulary import MessageState


class CamelModel(BaseModel):
    """Frozen, camelCase on the wire, built by field name in code."""

    model_config = ConfigDict(
        frozen=True,
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )


class SocialProfile(CamelModel):
    id: str = Field(description="The social profile: a Chorus account id")
    type: str = Field(description="Its network, as Chorus names the platform")


class MediaUrl(CamelModel):
    url: str
    alt_text: str | None = None


class ExternalReference(CamelModel):
    """The Chorus post a message publishes; absent on a shadow post."""

    post_id: uuid.UUID
    post_version: int
    approved_hash: str
    event_id: str = Field(description="The post.scheduled event the message came from")


class MessageError(CamelModel):
    code: str
    message: str


class Message(CamelModel):
    """One post on one social profile, as a scheduler holds it."""

    id: str
    state: MessageState
    social_profile: SocialProfile
    scheduled_send_time: AwareDatetime
    text: str
    media_urls: list[MediaUrl]
    external_reference: ExternalReference | None
    created_at: AwareDatetime
    sent_at: AwareDatetime | None = None
    platform_post_id: str | None = Field(default=None, description="The network's post id")
    post_url: str | None = Field(default=None, description="The published post's URL")
    error: MessageError | None = None


class Metrics(BaseModel):
    """Counters of a sent message; each only grows. Snake case, as Chorus's metrics name them."""

    model_config = ConfigDict(frozen=True)

    impressions: int
    reach: int
    reactions: int
    comments: int
    shares: int
    clicks: int
    video_views: int
    saves: int


class Analytics(CamelModel):
    message_id: str
    post_id: uuid.UUID | None
    social_profile_id: str
    platform_post_id: str
    metrics: Metrics
    collected_at: AwareDatetime


class ShadowPostCreate(CamelModel):
    """A post published on a profile outside Chorus, to be reported as sent."""

    social_profile_id: str = Field(min_length=1)
    social_profile_type: str = Field(default="unknown", min_length=1)
    text: str
    media_urls: list[str] = Field(default_factory=list)
    sent_at: AwareDatetime | None = Field(default=None, description="Default: now")


class MessageEnvelope(BaseModel):
    data: Message


class MessageList(BaseModel):
    data: list[Message]


class AnalyticsEnvelope(BaseModel):
    data: Analytics


# What the simulator reads of Chorus's deliveries.


class ChorusModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ChorusEvent(ChorusModel):
    """The CloudEvents envelope of a delivery."""

    specversion: str = Field(pattern=r"^1\.0$")
    id: str = Field(min_length=1)
    type: str = Field(min_length=1)
    source: str
    time: AwareDatetime
    data: dict[str, object]


class PostRef(ChorusModel):
    """The post's identity, first in every calendar event."""

    id: uuid.UUID
    version: int


class ScheduledMedia(ChorusModel):
    url: str
    alt_text: str | None = None


class ScheduledTarget(ChorusModel):
    account_id: uuid.UUID
    platform: str
    text: str
    link: str | None = None
    media: list[ScheduledMedia] = Field(default_factory=list)


class ScheduledPost(PostRef):
    """A ``post.scheduled`` event's data: one message per target, at ``publish_at``."""

    publish_at: AwareDatetime
    approved_hash: str
    targets: list[ScheduledTarget]
