"""When a message's next attempt runs: the retry schedule of Standard Webhooks, with jitter.

Attempts run immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h after
the one before: ten in all over about three and a half days. Each delay is stretched or shrunk
by up to 10% at random, so the retries of many messages failing together do not arrive
together. A 429 or 503 with ``Retry-After`` (seconds or an HTTP date) replaces the scheduled
delay by the receiver's, bounded by a second below and the longest delay above (a receiver
cannot stall a message for ever, nor hammer itself). Pure functions: the clock and the jitter
are the caller's.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

RETRY_DELAYS: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=14),
    timedelta(hours=20),
    timedelta(hours=24),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
JITTER = 0.1
RETRY_AFTER_FLOOR = timedelta(seconds=1)
RETRY_AFTER_CEILING = RETRY_DELAYS[-1]

Jitter = Callable[[timedelta], timedelta]


def random_jitter(delay: timedelta) -> timedelta:
    return delay * random.uniform(1 - JITTER, 1 + JITTER)


def delay_after(attempts_made: int, jitter: Jitter = random_jitter) -> timedelta | None:
    """How long after the `attempts_made`-th failed attempt the next one runs; None when
    the retries have run out."""
    if attempts_made < 1 or attempts_made > len(RETRY_DELAYS):
        return None
    return jitter(RETRY_DELAYS[attempts_made - 1])


def retry_after(value: str | None, now: datetime) -> timedelta | None:
    """The delay a ``Retry-After`` header asks for, bounded; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    delay: timedelta | None = None
    if value.isdigit():
        delay = timedelta(seconds=int(value))
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        delay = when - now
    return min(max(delay, RETRY_AFTER_FLOOR), RETRY_AFTER_CEILING)
