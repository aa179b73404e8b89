"""Which endpoints an event goes to: pure functions of the event and the endpoints.

An endpoint's event-type patterns are exact types, a prefix ending in ``.*`` (any type below
it) or ``*`` (every type). Its district filter is a subtree: an event matches when its district
lies at the filter's district or below it. An event's district is read from its data,
``district_path`` first (the path when the event was published), else ``district_id`` looked up
in the replica; an event without one matches only endpoints with no district filter. An
endpoint never receives the webhooks service's events about itself (its own exhaustion would
otherwise feed it new messages to fail).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from chassis.districts import within

WEBHOOKS_EVENT_PREFIX = "chorus.webhooks."


def type_matches(pattern: str, event_type: str) -> bool:
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


def any_type_matches(patterns: Iterable[str], event_type: str) -> bool:
    return any(type_matches(pattern, event_type) for pattern in patterns)


def event_district(data: dict[str, Any]) -> tuple[str | None, str | None]:
    """(district id, district path) as the event's data carries them, each None if absent."""
    district_id = data.get("district_id")
    path = data.get("district_path")
    return (
        district_id if isinstance(district_id, str) and district_id else None,
        path if isinstance(path, str) and path else None,
    )


@dataclass(frozen=True)
class LiveEndpoint:
    """What matching needs of an enabled endpoint: its patterns and its district's path
    (None: no district filter)."""

    id: Any
    event_types: Sequence[str]
    district_id: str | None
    district_path: str | None


def matching(
    endpoints: Iterable[LiveEndpoint],
    event_type: str,
    event_path: str | None,
    data: dict[str, Any],
) -> list[LiveEndpoint]:
    """The endpoints the event goes to, given the path of the event's district (None when it
    has none, or the replica does not know it)."""
    chosen = []
    for endpoint in endpoints:
        if not any_type_matches(endpoint.event_types, event_type):
            continue
        if event_type.startswith(WEBHOOKS_EVENT_PREFIX) and data.get("endpoint_id") == str(
            endpoint.id
        ):
            continue
        if endpoint.district_id is not None and (
            endpoint.district_path is None
            or event_path is None
            or not within(event_path, endpoint.district_path)
        ):
            continue
        chosen.append(endpoint)
    return chosen
