"""How many availability checks each caller may run: `INVENTORY_AVAILABILITY_CHECKS_PER_MINUTE`
per user, over a sliding minute.

A check makes outbound HTTP requests on the caller's behalf (up to one per platform), so an
unbounded caller could turn the service into a scanner of the platforms or, through a
Mastodon host, of anything else; the limit bounds that by user, whatever their roles.

The count is kept in the memory of each web process, not in the database: it costs nothing
per check and needs no table, but with N web processes (replicas or workers) a user may run
up to N times the limit per minute, and a restart forgets the counts. That is enough to stop
a runaway script; the gateway's rate limits stay the front line.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from chassis.errors import Problem

WINDOW_SECONDS = 60.0
# Past this many users in the table, callers idle for a whole window are swept out, so the
# table holds only the users of the last minute or so.
SWEEP_ABOVE = 10_000


class ChecksRateLimited(Problem):
    status = 429
    type_slug = "availability-rate-limited"
    title = "Too many availability checks"

    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(self.extensions["retry_after"])}


class CheckLimiter:
    """A sliding window log per user: the times of their checks of the last minute."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._checks: dict[str, deque[float]] = {}

    def acquire(self, user: str) -> None:
        """Count a check of `user`, or raise ChecksRateLimited (with `retry_after`, whole
        seconds) when they have run `per_minute` in the last minute."""
        now = self._clock()
        if len(self._checks) > SWEEP_ABOVE:
            self._sweep(now)
        times = self._checks.setdefault(user, deque())
        while times and times[0] <= now - WINDOW_SECONDS:
            times.popleft()
        if len(times) >= self.per_minute:
            retry_after = max(1, math.ceil(times[0] + WINDOW_SECONDS - now))
            raise ChecksRateLimited(
                f"At most {self.per_minute} availability checks a minute; try again in"
                f" {retry_after} s.",
                limit=self.per_minute,
                retry_after=retry_after,
            )
        times.append(now)

    def _sweep(self, now: float) -> None:
        for user in [u for u, t in self._checks.items() if not t or t[-1] <= now - WINDOW_SECONDS]:
            del self._checks[user]
