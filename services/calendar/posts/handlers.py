"""Handlers of approvals' decisions on posts and of the scheduler's callbacks."""

from __future__ import annotations

from chassis.consumer import Handler

APPROVAL_HANDLERS: dict[str, Handler] = {}
SCHEDULER_HANDLERS: dict[str, Handler] = {}
