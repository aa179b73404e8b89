"""What the running simulator holds: its scheduler, its inbound verifier, and the background
loops that publish due messages and push analytics. Built in the app's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

import httpx
from standardwebhooks.webhooks import Webhook

from tools.scheduler_sim.callbacks import CallbackSender
from tools.scheduler_sim.service import Scheduler
from tools.scheduler_sim.settings import SchedulerSimSettings
from tools.scheduler_sim.store import MessageStore

log = logging.getLogger("scheduler_sim")


class Runtime:
    def __init__(self, settings: SchedulerSimSettings, clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.client = httpx.AsyncClient(
            timeout=settings.callback_timeout_seconds, follow_redirects=False
        )
        self.callbacks = CallbackSender(
            self.client,
            url=settings.callback_url,
            secret=settings.callback_secret.get_secret_value(),
            attempts=settings.callback_attempts,
            backoff_seconds=settings.callback_backoff_seconds,
            clock=clock,
        )
        self.scheduler = Scheduler(MessageStore(), self.callbacks, settings, clock)
        self.inbound_webhook = Webhook(settings.inbound_secret.get_secret_value())
        self._wake = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []

    def wake_publisher(self) -> None:
        """Look for due messages now rather than at the next poll."""
        self._wake.set()

    def start(self) -> None:
        self._loops.append(asyncio.create_task(self._publish_loop()))
        if self.settings.analytics_push_interval_seconds > 0:
            self._loops.append(asyncio.create_task(self._analytics_loop()))

    async def stop(self) -> None:
        for loop in self._loops:
            loop.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        await self.callbacks.aclose()
        await self.client.aclose()

    async def _publish_loop(self) -> None:
        while True:
            # Cleared before looking, so a wake-up during the look is not lost.
            self._wake.clear()
            try:
                self.scheduler.publish_due()
            except Exception:  # a bug in one round must not stop publication for good
                log.exception("publishing due messages failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.poll_interval_seconds)

    async def _analytics_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.analytics_push_interval_seconds)
            try:
                self.scheduler.push_analytics()
            except Exception:
                log.exception("pushing analytics failed")
