"""The inventory's scheduled jobs: the detection scans, on the crons of its settings."""

from __future__ import annotations

from collections.abc import Callable

from chassis.jobs import PeriodicJob
from chassis.settings import ServiceSettings
from services.inventory.detection.service import scan_dormant, scan_near_duplicates, scan_orphaned
from services.inventory.settings import InventorySettings


def _setting(name: str) -> Callable[[ServiceSettings], str]:
    def cron(settings: ServiceSettings) -> str:
        assert isinstance(settings, InventorySettings)
        return str(getattr(settings, name))

    return cron


periodic_jobs = [
    PeriodicJob(
        name="near_duplicate_scan", cron=_setting("duplicate_scan_cron"), run=scan_near_duplicates
    ),
    PeriodicJob(name="dormant_scan", cron=_setting("dormant_scan_cron"), run=scan_dormant),
    PeriodicJob(name="orphaned_scan", cron=_setting("orphaned_scan_cron"), run=scan_orphaned),
]
