"""Every query of import and export.

An import reads the accounts it names in one statement (joined on the keys of the file) and
writes in bulk: COPY for new rows (accounts, owners, audit entries, outbox events), one
pipelined statement per kind of change for the rest. COPY runs on the session's own connection,
inside the request's transaction, so it commits or rolls back with everything else.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Text, and_, any_, delete, func, literal, select, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.database import copy_records
from services.inventory.models import Account, AccountOwner, AuditEntry, District

ACCOUNT_COLUMNS = (
    "id",
    "platform",
    "handle",
    "handle_key",
    "profile_url",
    "display_name",
    "district_id",
    "purpose",
    "language",
    "country",
    "tags",
    "notes",
    "status",
    "search_text",
    "created_by",
)
# What an import reads of an existing account: enough to compare, snapshot and update it.
STORED_COLUMNS = (*ACCOUNT_COLUMNS, "duplicate_of", "version")
OWNER_COLUMNS = ("account_id", "person", "role", "name", "email", "active")
AUDIT_COLUMNS = ("entity_type", "entity_id", "action", "actor", "request_id", "changes")

_UPDATE_ACCOUNT = text(
    "UPDATE accounts SET district_id = :district_id, display_name = :display_name,"
    " purpose = :purpose, language = :language, country = :country, tags = :tags,"
    " notes = :notes, status = :status, duplicate_of = :duplicate_of,"
    " search_text = :search_text, version = :version, updated_at = now()"
    " WHERE id = :id"
)


async def districts(session: AsyncSession) -> dict[str, str]:
    """Every district id with its path (the tree is small: hundreds of rows)."""
    rows = await session.execute(select(District.id, District.path))
    return {district_id: path for district_id, path in rows}


async def accounts_by_key(
    session: AsyncSession, keys: Sequence[tuple[str, str]], *, lock_under: Sequence[str] | None
) -> dict[tuple[str, str], tuple[dict[str, Any], str]]:
    """The accounts with these (platform, handle_key) as {column: value}, with their
    district's path. With `lock_under` (the import is going to write), those in a district
    under one of these paths (the caller's managed subtrees: the only accounts the import may
    change) are locked FOR UPDATE, in id order; the others are only read, so a file cannot
    lock accounts its importer may not change. Plain rows, not ORM objects: tens of thousands
    are read, and only the changed ones matter."""
    if not keys:
        return {}
    table = Account.__table__
    wanted = (
        func.unnest(
            literal([p for p, _ in keys], ARRAY(Text)), literal([k for _, k in keys], ARRAY(Text))
        )
        .table_valued("platform", "handle_key")
        .render_derived(name="wanted")
    )
    query = (
        select(*(table.c[name] for name in STORED_COLUMNS), District.path)
        .join(District, District.id == table.c.district_id)
        .join(
            wanted,
            and_(table.c.platform == wanted.c.platform, table.c.handle_key == wanted.c.handle_key),
        )
        .order_by(table.c.id)
    )
    queries = [query]
    if lock_under is not None:
        condition = "districts.path <@ CAST(:managed AS ltree[])"
        managed = text(condition).bindparams(managed=list(lock_under))
        others = text(f"NOT ({condition})").bindparams(managed=list(lock_under))
        queries = [query.where(managed).with_for_update(of=table), query.where(others)]
    found: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}
    for statement in queries:
        for row in await session.execute(statement):
            values = dict(zip(STORED_COLUMNS, row, strict=False))
            found[values["platform"], values["handle_key"]] = (values, row[-1])
    return found


async def owners_of(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """Owners of many accounts as {column: value} (an array parameter: no limit on how many)."""
    found: dict[uuid.UUID, list[dict[str, Any]]] = defaultdict(list)
    if ids:
        table = AccountOwner.__table__
        rows = await session.execute(
            select(*(table.c[name] for name in OWNER_COLUMNS)).where(
                table.c.account_id == any_(literal(list(ids), ARRAY(UUID(as_uuid=True))))
            )
        )
        for row in rows:
            values = dict(zip(OWNER_COLUMNS, row, strict=True))
            found[values.pop("account_id")].append(values)
    return found


async def insert_accounts(session: AsyncSession, records: Sequence[tuple[Any, ...]]) -> None:
    await copy_records(session, str(Account.__tablename__), ACCOUNT_COLUMNS, records)


async def insert_owners(session: AsyncSession, records: Sequence[tuple[Any, ...]]) -> None:
    await copy_records(session, str(AccountOwner.__tablename__), OWNER_COLUMNS, records)


async def insert_audit(session: AsyncSession, records: Sequence[tuple[Any, ...]]) -> None:
    await copy_records(session, str(AuditEntry.__tablename__), AUDIT_COLUMNS, records)


async def update_accounts(session: AsyncSession, values: Sequence[dict[str, Any]]) -> None:
    """One UPDATE per account, sent as one pipelined batch."""
    if values:
        await session.execute(_UPDATE_ACCOUNT, list(values))


async def delete_owners(session: AsyncSession, ids: Sequence[uuid.UUID]) -> None:
    if ids:
        await session.execute(
            delete(AccountOwner).where(
                AccountOwner.account_id == any_(literal(list(ids), ARRAY(UUID(as_uuid=True))))
            )
        )
