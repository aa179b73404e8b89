"""Detection: near-duplicate, dormant and orphaned accounts, as flags on the accounts.

Each scan reconciles the open flags of its reason with what holds now: a new finding becomes a
flag, published once as `account.flagged`; a finding that no longer holds has its flag resolved
(`account.flag_resolved`); a finding still open is left alone, so running a scan again changes
nothing. Both are audited on the account, by the actor "detection".

The scans are plain `async (session, settings, *, paths=None)` functions: a periodic job runs
them over the whole organisation, `POST /detection/run` over the caller's districts (`paths`,
ltree paths of subtrees). They flush; the caller's transaction commits. Scans of one check run
one at a time: a job waits for the one before; an on-demand run waits a little, then answers
409 (the organisation-wide near-duplicate scan takes a minute or more over 100,000 accounts).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from chassis.districts import Scope
from chassis.errors import Conflict, Forbidden
from chassis.settings import ServiceSettings
from services.inventory import audit
from services.inventory.detection import repository
from services.inventory.detection.repository import FlagChange
from services.inventory.detection.schemas import Check, CheckCounts, DetectionRun
from services.inventory.districts.service import districts
from services.inventory.events import AccountFlagChange, AccountFlagged, AccountFlagResolved
from services.inventory.rows import from_row
from services.inventory.settings import InventorySettings

DETECTION_ACTOR = "detection"
# How long an on-demand run waits for a scan of the same check under way elsewhere.
ON_DEMAND_LOCK_WAIT_SECONDS = 3.0
LOCK_POLL_SECONDS = 0.1


class DetectionRunning(Conflict):
    type_slug = "detection-running"
    title = "That check is running already"


class Scan(Protocol):
    def __call__(
        self,
        session: AsyncSession,
        settings: ServiceSettings,
        *,
        paths: Sequence[str] | None = None,
        lock_wait: float | None = None,
    ) -> Awaitable[CheckCounts]: ...


def _inventory_settings(settings: ServiceSettings) -> InventorySettings:
    # Typed as the chassis' settings so the scans fit a PeriodicJob as they are.
    if not isinstance(settings, InventorySettings):
        raise TypeError("the detection scans need the inventory service's settings")
    return settings


async def scan_near_duplicates(
    session: AsyncSession,
    settings: ServiceSettings,
    *,
    paths: Sequence[str] | None = None,
    lock_wait: float | None = None,
) -> CheckCounts:
    """Accounts on the same platform whose handles or names are at least
    `duplicate_similarity_threshold` alike (pg_trgm similarity); both of a pair are flagged,
    each naming the other. Archived accounts and pairs linked as duplicates are left out.
    With `paths`, only pairs with both accounts inside them are seen (and resolved)."""
    threshold = _inventory_settings(settings).duplicate_similarity_threshold
    await _lock(session, "near_duplicate", lock_wait)
    changes: list[FlagChange] = []
    for platform in await repository.platform_keys(session):
        changes += await repository.reconcile_near_duplicates(session, platform, threshold, paths)
    return await _publish(session, changes)


async def scan_dormant(
    session: AsyncSession,
    settings: ServiceSettings,
    *,
    paths: Sequence[str] | None = None,
    lock_wait: float | None = None,
) -> CheckCounts:
    """Official accounts without activity (a published post, or their creation) for their
    platform's dormant_after_days."""
    await _lock(session, "dormant", lock_wait)
    return await _publish(session, await repository.reconcile_dormant(session, paths))


async def scan_orphaned(
    session: AsyncSession,
    settings: ServiceSettings,
    *,
    paths: Sequence[str] | None = None,
    lock_wait: float | None = None,
) -> CheckCounts:
    """Official and dormant accounts without an active owner."""
    await _lock(session, "orphaned", lock_wait)
    return await _publish(session, await repository.reconcile_orphaned(session, paths))


SCANS: dict[Check, Scan] = {
    "near_duplicates": scan_near_duplicates,
    "dormant": scan_dormant,
    "orphaned": scan_orphaned,
}


async def run_on_demand(
    session: AsyncSession, scope: Scope, settings: ServiceSettings, data: DetectionRun
) -> dict[Check, CheckCounts]:
    """The requested checks over one district's subtree, or over every district the caller
    manages; managing is required."""
    if data.district_id is not None:
        district = await districts.get_managed(
            session, scope, data.district_id, "detection in district"
        )
        paths: list[str] = [district.path]
    elif scope.manage_paths:
        paths = list(scope.manage_paths)
    else:
        raise Forbidden("Running detection needs a manager role on a district.")
    return {
        check: await SCANS[check](
            session, settings, paths=paths, lock_wait=ON_DEMAND_LOCK_WAIT_SECONDS
        )
        for check in SCANS
        if check in data.checks
    }


async def record_post_published(
    session: AsyncSession, account_id: uuid.UUID, published_at: datetime
) -> None:
    """A post went out on the account: its last activity moves forward (a late event of an
    older post does not move it back), and an open dormant flag is resolved if the account is
    active again. Unknown accounts are ignored."""
    if published_at.tzinfo is None:
        published_at = published_at.replace(tzinfo=UTC)
    await repository.record_activity(session, account_id, published_at)
    await _publish(session, await repository.resolve_dormant_if_active(session, account_id))


async def _lock(session: AsyncSession, reason: str, wait: float | None) -> None:
    """Take the scan's lock: waiting as long as it takes (None), or `wait` seconds at most."""
    if wait is None:
        await repository.lock_scan(session, reason)
        return
    deadline = asyncio.get_running_loop().time() + wait
    while not await repository.try_lock_scan(session, reason):
        if asyncio.get_running_loop().time() >= deadline:
            raise DetectionRunning(
                f"A {reason.replace('_', '-')} scan is under way; try again in a minute.",
                check=reason,
            )
        await asyncio.sleep(LOCK_POLL_SECONDS)


async def _publish(session: AsyncSession, changes: Sequence[FlagChange]) -> CheckCounts:
    """Audit and publish each flag raised (`account.flagged`) or resolved
    (`account.flag_resolved`) on its account."""
    flagged = resolved = 0
    for change in changes:
        model: type[AccountFlagChange]
        if change.outcome == "flagged":
            flagged += 1
            action, model = "flagged", AccountFlagged
        else:
            resolved += 1
            action, model = "flag_resolved", AccountFlagResolved
        await audit.record_and_publish(
            session,
            entity_type="account",
            entity_id=change.account_id,
            action=action,
            actor=DETECTION_ACTOR,
            changes={
                "flag_id": change.flag_id,
                "reason": change.reason,
                "score": change.score,
                "details": change.details,
            },
            event=from_row(model, change),
        )
    return CheckCounts(flagged=flagged, resolved=resolved)
