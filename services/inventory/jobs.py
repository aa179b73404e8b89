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


# The scans read every account of the organisation in one statement: the near-duplicate scan
# took 81 s on 100,000 accounts in bench/inventory.py, past the engine's statement timeout,
# which is sized for requests. A scan is trusted background work, one at a time (a lock).
SCAN_STATEMENT_TIMEOUT_SECONDS = 30 * 60

periodic_jobs = [
    PeriodicJob(
        name="near_duplicate_scan",
        cron=_setting("duplicate_scan_cron"),
        run=scan_near_duplicates,
        statement_timeout=SCAN_STATEMENT_TIMEOUT_SECONDS,
    ),
    PeriodicJob(
        name="dormant_scan",
        cron=_setting("dormant_scan_cron"),
        run=scan_dormant,
        statement_timeout=SCAN_STATEMENT_TIMEOUT_SECONDS,
    ),
    PeriodicJob(
        name="orphaned_scan",
        cron=_setting("orphaned_scan_cron"),
        run=scan_orphaned,
        statement_timeout=SCAN_STATEMENT_TIMEOUT_SECONDS,
    ),
]
