"""The simulator's state, in memory: messages, the posts they come from, delivery ids seen.

Invariants:
- a message only moves forward: SCHEDULED -> SENT | FAILED | CANCELLED, never back;
- per Chorus post, only the newest event counts: events are ordered by (post version, event
  time), and one older than the last applied for its post changes nothing (a retried, late
  delivery cannot resurrect a cancelled post or bring back replaced content);
- a ``webhook-id`` is remembered once its delivery was applied, so a redelivery has no second
  effect; the newest ``SEEN_IDS_KEPT`` ids are kept.

Every method is synchronous: called from the event loop with no await inside, each runs
whole, so no lock is needed.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime

from tools.scheduler_sim.schemas import Message
from tools.scheduler_sim.vocabulary import MessageState

SEEN_IDS_KEPT = 100_000


class MessageStore:
    def __init__(self) -> None:
        self._messages: dict[str, Message] = {}
        self._by_post: dict[uuid.UUID, list[str]] = {}
        self._post_marks: dict[uuid.UUID, tuple[int, datetime]] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()

    # Delivery ids

    def seen(self, webhook_id: str) -> bool:
        return webhook_id in self._seen

    def remember(self, webhook_id: str) -> None:
        self._seen[webhook_id] = None
        while len(self._seen) > SEEN_IDS_KEPT:
            self._seen.popitem(last=False)

    # Event order per post

    def is_current(self, post_id: uuid.UUID, version: int, time: datetime) -> bool:
        """Whether an event of this post at (version, time) is not older than the last applied."""
        mark = self._post_marks.get(post_id)
        return mark is None or (version, time) >= mark

    def mark(self, post_id: uuid.UUID, version: int, time: datetime) -> None:
        self._post_marks[post_id] = (version, time)

    # Messages

    def add(self, message: Message) -> None:
        self._messages[message.id] = message
        if message.external_reference is not None:
            self._by_post.setdefault(message.external_reference.post_id, []).append(message.id)

    def update(self, message: Message) -> None:
        """Store a new state of a known message."""
        if message.id not in self._messages:
            raise KeyError(message.id)
        self._messages[message.id] = message

    def get(self, message_id: str) -> Message | None:
        return self._messages.get(message_id)

    def cancel_post(self, post_id: uuid.UUID) -> list[Message]:
        """Cancel the post's messages not yet sent; those already final stay as they are."""
        cancelled = []
        for message_id in self._by_post.get(post_id, []):
            message = self._messages[message_id]
            if message.state is MessageState.SCHEDULED:
                message = message.model_copy(update={"state": MessageState.CANCELLED})
                self._messages[message_id] = message
                cancelled.append(message)
        return cancelled

    def due(self, now: datetime | None) -> list[Message]:
        """Scheduled messages whose send time has come, oldest first; every scheduled one
        when ``now`` is None (fast mode)."""
        return sorted(
            (
                m
                for m in self._messages.values()
                if m.state is MessageState.SCHEDULED
                and (now is None or m.scheduled_send_time <= now)
            ),
            key=lambda m: (m.scheduled_send_time, m.created_at),
        )

    def sent(self) -> list[Message]:
        return [m for m in self._messages.values() if m.state is MessageState.SENT]

    def find(
        self,
        *,
        state: MessageState | None = None,
        social_profile_ids: Iterable[str] = (),
        post_id: uuid.UUID | None = None,
    ) -> list[Message]:
        """Messages matching every filter given, by send time then creation."""
        profiles = set(social_profile_ids)
        found = (
            m
            for m in self._messages.values()
            if (state is None or m.state is state)
            and (not profiles or m.social_profile.id in profiles)
            and (
                post_id is None
                or (m.external_reference is not None and m.external_reference.post_id == post_id)
            )
        )
        return sorted(found, key=lambda m: (m.scheduled_send_time, m.created_at))
