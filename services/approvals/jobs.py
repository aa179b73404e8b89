"""The approvals service's scheduled work: reminders, escalations at deadlines, and expiry
of requests whose publish time passed, swept on `APPROVALS_DEADLINE_SWEEP_CRON`."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from chassis.jobs import PeriodicJob
from chassis.settings import ServiceSettings
from services.approvals.requests import deadlines
from services.approvals.settings import ApprovalsSettings


def _sweep_cron(settings: ServiceSettings) -> str:
    assert isinstance(settings, ApprovalsSettings)
    return settings.deadline_sweep_cron


async def sweep_deadlines(session: AsyncSession, settings: ServiceSettings) -> None:
    await deadlines.sweep(session)


periodic_jobs = [PeriodicJob(name="deadline_sweep", cron=_sweep_cron, run=sweep_deadlines)]
