"""The simulator's vocabularies: message states (Hootsuite's names) and callback types."""

from __future__ import annotations

from enum import StrEnum


class MessageState(StrEnum):
    """A message's life: SCHEDULED until its send time, then SENT or FAILED; CANCELLED when
    Chorus takes the post back (or replaces it) before then. SENT, FAILED and CANCELLED are
    final."""

    SCHEDULED = "SCHEDULED"
    SENT = "SENT"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class CallbackType(StrEnum):
    """The ``type`` of a callback body sent to the configured callback URL."""

    MESSAGE_SENT = "message.sent"
    MESSAGE_FAILED = "message.failed"
    ANALYTICS_UPDATED = "analytics.updated"


class ChorusEventType(StrEnum):
    """The Chorus event types the simulator acts on; it acknowledges and ignores any other."""

    POST_SCHEDULED = "chorus.calendar.post.scheduled"
    POST_UNSCHEDULED = "chorus.calendar.post.unscheduled"
    POST_WITHDRAWN = "chorus.calendar.post.withdrawn"
    POST_CANCELLED = "chorus.calendar.post.cancelled"


# The events that take a scheduled post back: its pending messages are cancelled.
TAKE_BACK_EVENTS = frozenset(
    {
        ChorusEventType.POST_UNSCHEDULED,
        ChorusEventType.POST_WITHDRAWN,
        ChorusEventType.POST_CANCELLED,
    }
)
