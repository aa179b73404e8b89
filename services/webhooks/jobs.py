"""The webhooks service's scheduled work: the delivery log is pruned of attempts older than
``WEBHOOKS_ATTEMPT_RETENTION_DAYS`` (30) on ``WEBHOOKS_PRUNE_CRON`` (hourly). Deliveries
themselves run on their own queue (``deliveries.worker``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from chassis.jobs import PeriodicJob
from chassis.settings import ServiceSettings
from services.webhooks.deliveries import repository
from services.webhooks.settings import WebhooksSettings


def _prune_cron(settings: ServiceSettings) -> str:
    assert isinstance(settings, WebhooksSettings)
    return settings.prune_cron


async def prune_attempts(
    session: AsyncSession, settings: ServiceSettings, now: datetime | None = None
) -> int:
    """Delete the attempts older than the retention; how many went."""
    assert isinstance(settings, WebhooksSettings)
    now = now or datetime.now(UTC)
    return await repository.prune_attempts(
        session, now - timedelta(days=settings.attempt_retention_days)
    )


periodic_jobs = [PeriodicJob(name="prune_attempts", cron=_prune_cron, run=prune_attempts)]
