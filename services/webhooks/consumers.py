"""The consumers of the webhooks service: which services' events it reads, and a handler each."""

from __future__ import annotations

from chassis.app import ConsumerSpec

consumers: list[ConsumerSpec] = []
