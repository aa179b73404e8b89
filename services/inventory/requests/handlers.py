"""Handlers of the approvals service's events (account requests decided there)."""

from __future__ import annotations

from chassis.consumer import Handler

HANDLERS: dict[str, Handler] = {}
