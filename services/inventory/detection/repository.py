"""Every query of the detection module.

Each check reconciles the open flags of its reason with what holds now, in one statement: a
`due` CTE names the accounts (and, for near-duplicates, the other account) that deserve a flag;
flags missing from the open ones are inserted, open flags no longer due are resolved, and both
come back (`outcome` "flagged" or "resolved") so the service can audit and publish them. The
near-duplicate pairs are found first by a read-only statement (see NEAR_DUPLICATE_PAIRS).

Open flags are told apart by (account, reason, details->>'other_account_id'). The unique index
uq_account_flags_open cannot keep dormant and orphaned flags unique (their other_account_id is
NULL, and NULLs are distinct in a unique index), so inserts skip keys already open and scans of
one reason are serialised by a transaction advisory lock.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.inventory.vocabulary import FlagReason

# Two-key advisory lock namespace of the detection scans (the outbox uses 0x0B0C).
SCAN_LOCK_NAMESPACE = 0x0DE7

FLAG_KEY_MATCHES = (
    "(due.details->>'other_account_id') IS NOT DISTINCT FROM (f.details->>'other_account_id')"
)

RECONCILE = """
WITH due AS MATERIALIZED ({due}),
inserted AS (
    INSERT INTO account_flags (account_id, reason, score, details)
    SELECT due.account_id, :reason, due.score, due.details
    FROM due
    WHERE NOT EXISTS (
        SELECT 1 FROM account_flags f
        WHERE f.account_id = due.account_id AND f.reason = :reason AND f.resolved_at IS NULL
          AND {key_matches})
    ON CONFLICT DO NOTHING
    RETURNING id, account_id, reason, score, details
),
resolved AS (
    UPDATE account_flags f SET resolved_at = now()
    FROM accounts x JOIN districts xd ON xd.id = x.district_id
    WHERE f.account_id = x.id AND f.reason = :reason AND f.resolved_at IS NULL
      {resolve_scope}
      AND NOT EXISTS (
          SELECT 1 FROM due WHERE due.account_id = f.account_id AND {key_matches})
    RETURNING f.id, f.account_id, f.reason, f.score, f.details
)
SELECT 'flagged' AS outcome, i.id, i.account_id, i.reason, i.score, i.details,
       a.district_id, a.platform, a.handle
FROM inserted i JOIN accounts a ON a.id = i.account_id
UNION ALL
SELECT 'resolved', r.id, r.account_id, r.reason, r.score, r.details,
       a.district_id, a.platform, a.handle
FROM resolved r JOIN accounts a ON a.id = r.account_id
"""

IN_SCOPE = "{alias}.path <@ CAST(:paths AS ltree[])"

# Pairs on one platform whose handles, or handles and names, look alike. Each branch is a
# self-join the trigram GIN index answers (`%` against the indexed column), so the work grows
# with the number of similar pairs, not with the square of the accounts. a.id < b.id keeps each
# pair once; a pair already linked as duplicate (one the original of the other, or both
# duplicates of one original) is no finding.
_PAIR_BRANCH = """
    SELECT a.id AS a_id, a.handle AS a_handle, b.id AS b_id, b.handle AS b_handle,
           similarity(a.handle_key, b.handle_key) AS handle_similarity,
           similarity(a.search_text, b.search_text) AS name_similarity
    FROM accounts a
    JOIN accounts b ON b.{column} % a.{column} AND b.platform = a.platform AND b.id > a.id
    {scope_join}
    WHERE a.platform = :platform
      AND a.status <> 'archived' AND b.status <> 'archived'
      AND coalesce(a.duplicate_of, a.id) <> coalesce(b.duplicate_of, b.id)
      {scope_where}
"""

# A statement that writes runs without parallel workers, so the pairs are found by a read-only
# statement of their own (about twice as fast over 100,000 accounts) and handed back to the
# reconciliation as arrays: the similar pairs are few next to the accounts.
NEAR_DUPLICATE_PAIRS = """
    SELECT a_id, a_handle, b_id, b_handle,
           round(handle_similarity::numeric, 3)::float8,
           round(name_similarity::numeric, 3)::float8
    FROM ({handle_branch} UNION {name_branch}) AS candidates
    WHERE greatest(handle_similarity, name_similarity) >= CAST(:threshold AS real)
"""

NEAR_DUPLICATES_DUE = """
    SELECT p.account_id, greatest(p.handle_similarity, p.name_similarity) AS score,
           jsonb_build_object('other_account_id', p.other_id::text,
                              'other_handle', p.other_handle,
                              'handle_similarity', p.handle_similarity,
                              'name_similarity', p.name_similarity) AS details
    FROM unnest(CAST(:account_ids AS uuid[]), CAST(:other_ids AS uuid[]),
                CAST(:other_handles AS text[]), CAST(:handle_similarities AS float8[]),
                CAST(:name_similarities AS float8[]))
         AS p(account_id, other_id, other_handle, handle_similarity, name_similarity)
"""

DORMANT_DUE = """
    SELECT a.id AS account_id, CAST(NULL AS float8) AS score,
           jsonb_build_object('last_activity_at', a.last_activity_at,
                              'inactive_since', coalesce(a.last_activity_at, a.created_at),
                              'dormant_after_days', p.dormant_after_days) AS details
    FROM accounts a
    JOIN platforms p ON p.key = a.platform
    JOIN districts d ON d.id = a.district_id
    WHERE a.status = 'official'
      AND coalesce(a.last_activity_at, a.created_at)
          < now() - make_interval(days => p.dormant_after_days)
      {scope_where}
"""

ORPHANED_DUE = """
    SELECT a.id AS account_id, CAST(NULL AS float8) AS score,
           jsonb_build_object('status', a.status, 'inactive_owners', coalesce(
               (SELECT jsonb_agg(o.person ORDER BY o.person) FROM account_owners o
                WHERE o.account_id = a.id), '[]'::jsonb)) AS details
    FROM accounts a
    JOIN districts d ON d.id = a.district_id
    WHERE a.status IN ('official', 'dormant')
      AND NOT EXISTS (
          SELECT 1 FROM account_owners o WHERE o.account_id = a.id AND o.active)
      {scope_where}
"""


@dataclass(frozen=True)
class FlagChange:
    outcome: str  # "flagged" or "resolved"
    flag_id: int
    account_id: uuid.UUID
    reason: str
    score: float | None
    details: dict[str, Any]
    district_id: str
    platform: str
    handle: str


async def lock_scan(session: AsyncSession, reason: str) -> None:
    """One scan of a reason at a time (a scheduled run and an on-demand one may overlap)."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(:namespace, hashtext(:reason))"),
        {"namespace": SCAN_LOCK_NAMESPACE, "reason": reason},
    )


async def try_lock_scan(session: AsyncSession, reason: str) -> bool:
    """lock_scan if no other transaction holds it; False otherwise."""
    locked = await session.scalar(
        text("SELECT pg_try_advisory_xact_lock(:namespace, hashtext(:reason))"),
        {"namespace": SCAN_LOCK_NAMESPACE, "reason": reason},
    )
    return bool(locked)


async def platform_keys(session: AsyncSession) -> list[str]:
    return list((await session.execute(text("SELECT key FROM platforms ORDER BY key"))).scalars())


def _scope(alias: str, paths: Sequence[str] | None) -> str:
    return "" if paths is None else "AND " + IN_SCOPE.format(alias=alias)


async def _reconcile(
    session: AsyncSession,
    *,
    reason: str,
    due: str,
    params: dict[str, Any],
    paths: Sequence[str] | None,
    resolve_filter: str = "",
) -> list[FlagChange]:
    resolve_scope = resolve_filter + " " + _scope("xd", paths)
    if paths is not None:
        # A scoped run sees only pairs inside its scope: a flag naming an account outside it is
        # left to a run that sees both.
        resolve_scope += (
            " AND NOT EXISTS (SELECT 1 FROM accounts o JOIN districts od ON od.id = o.district_id"
            " WHERE o.id = CAST(f.details->>'other_account_id' AS uuid)"
            " AND NOT (od.path <@ CAST(:paths AS ltree[])))"
        )
        params = {**params, "paths": list(paths)}
    statement = RECONCILE.format(due=due, key_matches=FLAG_KEY_MATCHES, resolve_scope=resolve_scope)
    rows = await session.execute(text(statement), {**params, "reason": reason})
    return [FlagChange(*row) for row in rows]


async def reconcile_near_duplicates(
    session: AsyncSession, platform: str, threshold: float, paths: Sequence[str] | None
) -> list[FlagChange]:
    # `%` compares with this threshold; local to the transaction, so a pooled connection does
    # not keep it.
    await session.execute(
        text("SELECT set_config('pg_trgm.similarity_threshold', :threshold, true)"),
        {"threshold": str(threshold)},
    )
    scope_join = (
        ""
        if paths is None
        else "JOIN districts ad ON ad.id = a.district_id JOIN districts bd ON bd.id = b.district_id"
    )
    scope_where = "" if paths is None else f"{_scope('ad', paths)} {_scope('bd', paths)}"
    handle_branch, name_branch = (
        _PAIR_BRANCH.format(column=column, scope_join=scope_join, scope_where=scope_where)
        for column in ("handle_key", "search_text")
    )
    params: dict[str, Any] = {"platform": platform, "threshold": threshold}
    if paths is not None:
        params["paths"] = list(paths)
    pairs = (
        await session.execute(
            text(NEAR_DUPLICATE_PAIRS.format(handle_branch=handle_branch, name_branch=name_branch)),
            params,
        )
    ).all()
    # Each pair flags both of its accounts, each naming the other.
    due: dict[str, list[Any]] = {
        "account_ids": [],
        "other_ids": [],
        "other_handles": [],
        "handle_similarities": [],
        "name_similarities": [],
    }
    for a_id, a_handle, b_id, b_handle, handle_similarity, name_similarity in pairs:
        for account_id, other_id, other_handle in ((a_id, b_id, b_handle), (b_id, a_id, a_handle)):
            due["account_ids"].append(account_id)
            due["other_ids"].append(other_id)
            due["other_handles"].append(other_handle)
            due["handle_similarities"].append(handle_similarity)
            due["name_similarities"].append(name_similarity)
    return await _reconcile(
        session,
        reason=FlagReason.NEAR_DUPLICATE,
        due=NEAR_DUPLICATES_DUE,
        params={"platform": platform, **due},
        paths=paths,
        resolve_filter="AND x.platform = :platform",
    )


async def reconcile_dormant(session: AsyncSession, paths: Sequence[str] | None) -> list[FlagChange]:
    due = DORMANT_DUE.format(scope_where=_scope("d", paths))
    return await _reconcile(session, reason=FlagReason.DORMANT, due=due, params={}, paths=paths)


async def reconcile_orphaned(
    session: AsyncSession, paths: Sequence[str] | None
) -> list[FlagChange]:
    due = ORPHANED_DUE.format(scope_where=_scope("d", paths))
    return await _reconcile(session, reason=FlagReason.ORPHANED, due=due, params={}, paths=paths)


async def record_activity(session: AsyncSession, account_id: uuid.UUID, at: datetime) -> None:
    """Move the account's last activity forward to `at` (never back, never past now)."""
    await session.execute(
        text(
            "UPDATE accounts SET last_activity_at = least(CAST(:at AS timestamptz), now())"
            " WHERE id = :id"
            " AND (last_activity_at IS NULL"
            "      OR last_activity_at < least(CAST(:at AS timestamptz), now()))"
        ),
        {"id": account_id, "at": at},
    )


async def resolve_dormant_if_active(
    session: AsyncSession, account_id: uuid.UUID
) -> list[FlagChange]:
    """Resolve the account's open dormant flag when its last activity is recent enough."""
    rows = await session.execute(
        text(
            """
            WITH resolved AS (
                UPDATE account_flags f SET resolved_at = now()
                FROM accounts a JOIN platforms p ON p.key = a.platform
                WHERE f.account_id = :id AND a.id = f.account_id
                  AND f.reason = 'dormant' AND f.resolved_at IS NULL
                  AND a.last_activity_at >= now() - make_interval(days => p.dormant_after_days)
                RETURNING f.id, f.account_id, f.reason, f.score, f.details,
                          a.district_id, a.platform, a.handle
            )
            SELECT 'resolved', * FROM resolved
            """
        ),
        {"id": account_id},
    )
    return [FlagChange(*row) for row in rows]
