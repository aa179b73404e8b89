"""Signed callbacks to the configured callback URL, retried with backoff.

A callback is a JSON body ``{"type", "timestamp", "data"}`` sent with Standard Webhooks headers:
``webhook-id`` (one per callback, the same on every attempt, so the receiver can de-duplicate),
``webhook-timestamp`` and ``webhook-signature`` (signed anew at each attempt, so a late retry is
not refused as stale). Any 2xx ends it; anything else, or no answer, is retried after
``backoff * 2**n`` seconds, up to the configured number of attempts, then logged and dropped.

Each callback is sent by a task of its own: a receiver failing one callback never holds back
the others.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook

from tools.scheduler_sim.vocabulary import CallbackType

log = logging.getLogger("scheduler_sim.callbacks")

Clock = Callable[[], datetime]


def callback_body(kind: CallbackType, timestamp: datetime, data: Mapping[str, Any]) -> str:
    return json.dumps(
        {"type": str(kind), "timestamp": timestamp.isoformat(), "data": data},
        separators=(",", ":"),
    )


class CallbackSender:
    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        url: str | None,
        secret: str,
        attempts: int,
        backoff_seconds: float,
        clock: Clock,
    ) -> None:
        self._client = client
        self._url = url
        self._webhook = Webhook(secret)
        self._attempts = attempts
        self._backoff = backoff_seconds
        self._clock = clock
        self._tasks: set[asyncio.Task[None]] = set()

    def send(self, kind: CallbackType, data: Mapping[str, Any]) -> None:
        """Send a callback in the background; without a callback URL, only log it."""
        body = callback_body(kind, self._clock(), data)
        if self._url is None:
            log.info("no callback URL; dropped %s: %s", kind, body)
            return
        task = asyncio.create_task(self._deliver(self._url, f"msg_{uuid.uuid4().hex}", body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, url: str, webhook_id: str, body: str) -> None:
        for attempt in range(1, self._attempts + 1):
            outcome = await self._attempt(url, webhook_id, body)
            if outcome is None:
                return
            log.warning("callback %s attempt %d failed: %s", webhook_id, attempt, outcome)
            if attempt < self._attempts:
                await asyncio.sleep(self._backoff * 2 ** (attempt - 1))
        log.error("callback %s given up after %d attempts", webhook_id, self._attempts)

    async def _attempt(self, url: str, webhook_id: str, body: str) -> str | None:
        """One attempt; None on success, else what went wrong."""
        now = self._clock().astimezone(UTC)
        headers = {
            "content-type": "application/json",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self._webhook.sign(webhook_id, now, body),
        }
        try:
            response = await self._client.post(url, content=body.encode(), headers=headers)
        except httpx.HTTPError as error:
            return f"{type(error).__name__}: {error}"
        if response.is_success:
            return None
        return f"HTTP {response.status_code}"

    async def drain(self) -> None:
        """Wait for the callbacks in flight (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
