"""The scheduler's rules: messages from Chorus's events, publication, reports, analytics.

- ``post.scheduled`` creates one SCHEDULED message per target, sent at ``publish_at``; a newer
  one for the same post first cancels the post's messages not yet sent (replacement);
- ``post.unscheduled`` / ``post.withdrawn`` / ``post.cancelled`` cancel them;
- an event older than the last applied for its post (see ``store``) changes nothing;
- publication: a message whose text contains the failure marker (any case) becomes FAILED
  with an error, any other SENT with a platform post id and URL derived from its id; each
  outcome is called back (``message.sent`` / ``message.failed``);
- a shadow post is a SENT message with no Chorus post, called back at once.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tools.scheduler_sim.analytics import metrics_at
from tools.scheduler_sim.callbacks import CallbackSender
from tools.scheduler_sim.schemas import (
    Analytics,
    ChorusEvent,
    ExternalReference,
    MediaUrl,
    Message,
    MessageError,
    PostRef,
    ScheduledPost,
    ScheduledTarget,
    ShadowPostCreate,
    SocialProfile,
)
from tools.scheduler_sim.settings import SchedulerSimSettings
from tools.scheduler_sim.store import MessageStore
from tools.scheduler_sim.vocabulary import CallbackType, MessageState

FAILURE_CODE = "SIMULATED_FAILURE"


class MessageNotFound(LookupError):
    pass


class MessageNotSent(Exception):
    """Analytics exist only for a sent message."""


def new_message_id() -> str:
    """A numeric string, as Hootsuite's message ids are."""
    return str(uuid.uuid4().int >> 64)


def platform_post_id(message_id: str) -> str:
    """The network's id of a sent message: stable for the message, like a real one."""
    return str(int(hashlib.sha256(message_id.encode()).hexdigest()[:15], 16))


def post_url(platform: str, profile_id: str, network_id: str) -> str:
    return f"https://{platform}.sim.example/{profile_id}/posts/{network_id}"


def message_text(target: ScheduledTarget) -> str:
    """What is published: a network post carries its link in its text."""
    if target.link and target.link not in target.text:
        return f"{target.text}\n{target.link}" if target.text else target.link
    return target.text


class Scheduler:
    def __init__(
        self,
        store: MessageStore,
        callbacks: CallbackSender,
        settings: SchedulerSimSettings,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self._callbacks = callbacks
        self._settings = settings
        self._clock = clock

    def now(self) -> datetime:
        return self._clock().astimezone(UTC)

    # Chorus's events

    def schedule(self, event: ChorusEvent, post: ScheduledPost) -> list[Message]:
        """The post's messages, one per target, replacing those of an older schedule."""
        if not self.store.is_current(post.id, post.version, event.time):
            return []
        self.store.mark(post.id, post.version, event.time)
        self.store.cancel_post(post.id)
        reference = ExternalReference(
            post_id=post.id,
            post_version=post.version,
            approved_hash=post.approved_hash,
            event_id=event.id,
        )
        created = []
        for target in post.targets:
            message = Message(
                id=new_message_id(),
                state=MessageState.SCHEDULED,
                social_profile=SocialProfile(id=str(target.account_id), type=target.platform),
                scheduled_send_time=post.publish_at.astimezone(UTC),
                text=message_text(target),
                media_urls=[MediaUrl(url=m.url, alt_text=m.alt_text) for m in target.media],
                external_reference=reference,
                created_at=self.now(),
            )
            self.store.add(message)
            created.append(message)
        return created

    def take_back(self, event: ChorusEvent, post: PostRef) -> list[Message]:
        """Cancel the post's messages not yet sent."""
        if not self.store.is_current(post.id, post.version, event.time):
            return []
        self.store.mark(post.id, post.version, event.time)
        return self.store.cancel_post(post.id)

    # Publication

    def publish_due(self) -> list[Message]:
        """Publish every message whose time has come (all scheduled ones in fast mode)."""
        now = self.now()
        published = []
        for message in self.store.due(None if self._settings.fast_mode else now):
            published.append(self._publish(message, now))
        return published

    def _publish(self, message: Message, now: datetime) -> Message:
        if self._settings.failure_marker.casefold() in message.text.casefold():
            error = MessageError(
                code=FAILURE_CODE,
                message=f"The text contains the failure marker {self._settings.failure_marker!r}.",
            )
            failed = message.model_copy(update={"state": MessageState.FAILED, "error": error})
            self.store.update(failed)
            self._callbacks.send(CallbackType.MESSAGE_FAILED, failed_data(failed, now))
            return failed
        network_id = platform_post_id(message.id)
        sent = message.model_copy(
            update={
                "state": MessageState.SENT,
                "sent_at": now,
                "platform_post_id": network_id,
                "post_url": post_url(
                    message.social_profile.type, message.social_profile.id, network_id
                ),
            }
        )
        self.store.update(sent)
        self._callbacks.send(CallbackType.MESSAGE_SENT, sent_data(sent))
        return sent

    def shadow_post(self, request: ShadowPostCreate) -> Message:
        """A post published outside Chorus, reported at once as sent with no Chorus post."""
        now = self.now()
        sent_at = (request.sent_at or now).astimezone(UTC)
        message_id = new_message_id()
        network_id = platform_post_id(message_id)
        message = Message(
            id=message_id,
            state=MessageState.SENT,
            social_profile=SocialProfile(
                id=request.social_profile_id, type=request.social_profile_type
            ),
            scheduled_send_time=sent_at,
            text=request.text,
            media_urls=[MediaUrl(url=url) for url in request.media_urls],
            external_reference=None,
            created_at=now,
            sent_at=sent_at,
            platform_post_id=network_id,
            post_url=post_url(request.social_profile_type, request.social_profile_id, network_id),
        )
        self.store.add(message)
        self._callbacks.send(CallbackType.MESSAGE_SENT, sent_data(message))
        return message

    # Analytics

    def analytics(self, message_id: str) -> Analytics:
        message = self.store.get(message_id)
        if message is None:
            raise MessageNotFound(message_id)
        if message.state is not MessageState.SENT:
            raise MessageNotSent(message_id)
        return self._analytics_of(message)

    def _analytics_of(self, message: Message) -> Analytics:
        assert message.sent_at is not None
        assert message.platform_post_id is not None
        now = self.now()
        return Analytics(
            message_id=message.id,
            post_id=post_id_of(message),
            social_profile_id=message.social_profile.id,
            platform_post_id=message.platform_post_id,
            metrics=metrics_at(
                message.id,
                has_media=bool(message.media_urls),
                age=now - message.sent_at,
                time_constant_seconds=self._settings.analytics_time_constant_seconds,
            ),
            collected_at=now,
        )

    def push_analytics(self) -> int:
        """Call back ``analytics.updated`` for every sent message; how many."""
        sent = self.store.sent()
        for message in sent:
            analytics = self._analytics_of(message)
            self._callbacks.send(CallbackType.ANALYTICS_UPDATED, analytics.model_dump(mode="json"))
        return len(sent)


def post_id_of(message: Message) -> uuid.UUID | None:
    return message.external_reference.post_id if message.external_reference else None


def _report(message: Message) -> dict[str, Any]:
    post_id = post_id_of(message)
    return {
        "message": message.model_dump(mode="json"),
        "postId": str(post_id) if post_id else None,
        "socialProfileId": message.social_profile.id,
    }


def sent_data(message: Message) -> dict[str, Any]:
    assert message.sent_at is not None
    return _report(message) | {
        "platformPostId": message.platform_post_id,
        "postUrl": message.post_url,
        "sentAt": message.sent_at.isoformat(),
    }


def failed_data(message: Message, failed_at: datetime) -> dict[str, Any]:
    assert message.error is not None
    return _report(message) | {"error": message.error.message, "failedAt": failed_at.isoformat()}
