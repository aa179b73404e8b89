"""Metrics of a sent message that grow over time, deterministically.

Each metric follows a saturating curve, ``final * (1 - exp(-t / tau))`` rounded down, where
``t`` is the time since sending and ``tau`` a setting. The final values come from a hash of the
message id, so the same message at the same age always has the same metrics, two messages
differ, and every counter only grows. Engagement counts are fractions of the impressions, in
ranges usual for organic posts; video views exist only for a message with media.
"""

from __future__ import annotations

import hashlib
import math
from datetime import timedelta

from tools.scheduler_sim.schemas import Metrics

# (metric, lowest, highest share of the final impressions)
SHARES = (
    ("reach", 0.55, 0.9),
    ("reactions", 0.02, 0.08),
    ("comments", 0.002, 0.01),
    ("shares", 0.002, 0.015),
    ("clicks", 0.005, 0.03),
    ("video_views", 0.1, 0.4),
    ("saves", 0.001, 0.01),
)
IMPRESSIONS = (20_000, 200_000)


def _fraction(seed: bytes, index: int) -> float:
    """A number in [0, 1) drawn from the seed, a different one per index."""
    chunk = seed[2 * index : 2 * index + 2]
    return int.from_bytes(chunk, "big") / 65_536


def final_metrics(message_id: str, *, has_media: bool) -> dict[str, int]:
    """What the message's metrics tend to."""
    seed = hashlib.sha256(message_id.encode()).digest()
    low, high = IMPRESSIONS
    impressions = low + int((high - low) * _fraction(seed, 0))
    finals = {"impressions": impressions}
    for index, (name, lowest, highest) in enumerate(SHARES, start=1):
        share = lowest + (highest - lowest) * _fraction(seed, index)
        finals[name] = int(impressions * share)
    if not has_media:
        finals["video_views"] = 0
    return finals


def metrics_at(
    message_id: str, *, has_media: bool, age: timedelta, time_constant_seconds: float
) -> Metrics:
    """The message's metrics ``age`` after it was sent (none before)."""
    progress = 1 - math.exp(-max(age.total_seconds(), 0.0) / time_constant_seconds)
    finals = final_metrics(message_id, has_media=has_media)
    return Metrics(**{name: math.floor(final * progress) for name, final in finals.items()})
