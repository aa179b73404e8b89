"""Events the webhooks service publishes, and the handlers of those it consumes."""

from __future__ import annotations

from chassis.app import ConsumerSpec

consumers: list[ConsumerSpec] = []
