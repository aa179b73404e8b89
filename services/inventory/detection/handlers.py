"""Handlers of the calendar service's events (last activity per account)."""

from __future__ import annotations

from chassis.consumer import Handler

HANDLERS: dict[str, Handler] = {}
