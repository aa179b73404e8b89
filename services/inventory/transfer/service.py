"""CSV import and export of accounts.

An import is all or nothing. Every row is checked first, against the same rules as the API
(platform and handle rules, the district and the caller's role on it, initial statuses and
status transitions, no account twice in the file); if any row is wrong the import is refused
with every error and its line, and nothing is written. Otherwise each row is upserted on
(platform, normalised handle): a new account is registered, an existing one is updated where
the file says something else, and a row that changes nothing writes nothing, so importing the
same file twice is harmless. Each change is audited and published as the accounts service does
(`account.registered`, `account.updated`, `account.status_changed`), in the same transaction.

Columns missing from the file are left as they are on existing accounts; an empty cell clears
the value. The owner columns replace the owners of their role (a person who stays keeps their
name, email and active flag).

The writes are bulk statements (tens of thousands of accounts in seconds): the rows, owners,
audit entries and outbox events of each batch go in with COPY. New accounts' ids are unknown to
any other transaction until commit and the existing ones it may change (those in districts the
caller manages; no others are ever written) stay locked FOR UPDATE from the check to the
commit, so events of one account keep their order without the per-event advisory lock that
`publish` takes (tens of thousands of those would exhaust PostgreSQL's lock table). Accounts
of other districts are only read: a file cannot lock what its importer may not change.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import IO, Any, TypeVar

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis.districts import MANAGER_ROLES, Scope
from chassis.errors import Conflict, Forbidden, Unprocessable
from chassis.events import EventData
from chassis.observability import request_id_var
from chassis.principal import Principal
from services.inventory import audit
from services.inventory.access import tree
from services.inventory.accounts import repository as accounts_repository
from services.inventory.accounts.schemas import AccountFilters, Owner
from services.inventory.accounts.service import (
    EDITABLE,
    TRANSITIONS,
    accounts,
    audit_state,
    search_text,
    snapshot,
    status_changed,
)
from services.inventory.districts.service import districts
from services.inventory.events import AccountRegistered, AccountUpdated
from services.inventory.models import Account, messaging
from services.inventory.platforms import load_registry
from services.inventory.transfer import csv_format, repository
from services.inventory.transfer.csv_format import Candidate, ParsedFile, RowFault
from services.inventory.transfer.schemas import MAX_OWNERS, ImportResult, ImportRow, RowError
from services.inventory.vocabulary import AccountStatus, OwnerRole

WRITE_BATCH = 2_000  # accounts per batch of bulk statements, and per progress line
EXPORT_PAGE = 1_000
IMPORT_REASON = "CSV import"
OWNER_COLUMNS = {"owner_primary": OwnerRole.PRIMARY, "owner_backup": OwnerRole.BACKUP}

T = TypeVar("T")


class ImportRejected(Unprocessable):
    type_slug = "import-rejected"
    title = "The file has errors; nothing was imported"


class ImportForbidden(Forbidden):
    type_slug = "import-forbidden"
    title = "Importing accounts needs a manager role"


class ImportConflict(Conflict):
    type_slug = "import-conflict"
    title = "The inventory changed while the import ran"


@dataclass
class Creation:
    values: dict[str, Any]  # the new account's columns
    owners: list[Owner]


@dataclass
class Change:
    before: dict[str, Any]  # the stored columns
    # Transient (never added to the session): as the `updated` event shows it, then (when
    # writing) as the status change leaves it.
    after: Account
    owners: list[Owner]
    owners_changed: bool
    changes: dict[str, Any]  # the audit diff of the details; empty when only the status moves
    status: str  # the status after the import


@dataclass
class ImportPlan:
    header: tuple[str, ...]
    actor: str
    rows: int = 0
    creations: list[Creation] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    unchanged: int = 0

    @property
    def to_write(self) -> int:
        return len(self.creations) + len(self.changes)

    def result(self, *, dry_run: bool) -> ImportResult:
        return ImportResult(
            dry_run=dry_run,
            rows=self.rows,
            created=len(self.creations),
            updated=len(self.changes),
            unchanged=self.unchanged,
        )


class TransferService:
    def require_writer(self, principal: Principal) -> None:
        """Refuse (403) a caller who holds no role that writes accounts on any district, before
        the upload is read: reading, checking and locking a file is work that only someone
        who may import should be able to cause. Which rows they may write is checked per row,
        against their districts."""
        if not any(roles & MANAGER_ROLES for roles in principal.grants.values()):
            raise ImportForbidden(
                "Importing accounts needs regional_manager or district_manager on a district."
            )

    async def plan(
        self,
        session: AsyncSession,
        principal: Principal,
        upload: IO[bytes],
        *,
        max_rows: int,
        lock: bool,
    ) -> ImportPlan:
        """Read and check the whole file; what the import will write. Raises ImportRejected
        with every row error. With `lock`, the existing accounts it names in districts the
        caller manages stay locked until the transaction ends (the others are only read)."""
        scope = await tree.scope_of(session, principal)
        registry = await load_registry(session)
        paths = await repository.districts(session)
        # Reading and checking rows is CPU work (seconds for a large file): off the event loop.
        parsed = await asyncio.to_thread(csv_format.parse, upload, max_rows, registry, paths, scope)
        found = await repository.accounts_by_key(
            session,
            [c.key for c in parsed.candidates],
            lock_under=scope.manage_paths if lock else None,
        )
        owners = await repository.owners_of(session, [v["id"] for v, _ in found.values()])
        plan = await asyncio.to_thread(_decide, parsed, found, owners, scope)
        if parsed.errors:
            errors = sorted(parsed.errors, key=lambda e: e.line)
            lines = len({e.line for e in errors})
            raise ImportRejected(
                f"{lines} of {parsed.rows} rows have errors; nothing was imported. See 'errors'.",
                errors=[e.model_dump(exclude_none=True) for e in errors],
            )
        return plan

    async def write(self, session: AsyncSession, plan: ImportPlan) -> AsyncIterator[int]:
        """Write the plan in batches; yields how many accounts are written so far."""
        done = 0
        request_id = request_id_var.get()
        for creations in _batches(plan.creations):
            await _write_creations(session, creations, plan.actor, request_id)
            done += len(creations)
            yield done
        for changes in _batches(plan.changes):
            await _write_changes(session, changes, plan.actor, request_id)
            done += len(changes)
            yield done

    async def export(
        self,
        factory: async_sessionmaker[AsyncSession],
        principal: Principal,
        filters: AccountFilters,
        *,
        format_: str,
        escape_formulas: bool,
    ) -> tuple[AsyncIterator[bytes], str]:
        """The export's body and media type. Who the caller is and where is read before the
        response starts (a 404 for the district is still possible then); the pages are read
        later, each on a connection of its own (``_chunks``)."""
        async with factory() as session:
            scope = await tree.scope_of(session, principal)
            district_path = await districts.subtree(session, scope, filters.district_id)
        if format_ == "json":
            return self.export_json(factory, scope, filters, district_path), "application/json"
        body = self.export_csv(
            factory, scope, filters, district_path, escape_formulas=escape_formulas
        )
        return body, "text/csv; charset=utf-8"

    async def export_csv(
        self,
        factory: async_sessionmaker[AsyncSession],
        scope: Scope,
        filters: AccountFilters,
        district_path: str | None,
        *,
        escape_formulas: bool = True,
    ) -> AsyncIterator[bytes]:
        """The accounts as CSV in the import's columns, so the file reads back unchanged
        (cells a spreadsheet would run as formulas are escaped, see csv_format)."""

        async def render(session: AsyncSession, page: list[Account]) -> bytes:
            owners = await accounts_repository.owners_of(session, [a.id for a in page])
            return csv_format.rows_bytes(
                (_csv_row(a, owners.get(a.id, [])) for a in page), escape_formulas=escape_formulas
            )

        yield csv_format.header_line()
        async for chunk in _chunks(factory, scope, filters, district_path, render):
            yield chunk

    async def export_json(
        self,
        factory: async_sessionmaker[AsyncSession],
        scope: Scope,
        filters: AccountFilters,
        district_path: str | None,
    ) -> AsyncIterator[bytes]:
        """The accounts as a JSON array of the API's account objects (owners and open flags)."""

        async def render(session: AsyncSession, page: list[Account]) -> bytes:
            items = await accounts.out(session, page)
            return b",".join(item.model_dump_json().encode() for item in items)

        yield b"["
        first = True
        async for chunk in _chunks(factory, scope, filters, district_path, render):
            yield chunk if first else b"," + chunk
            first = False
        yield b"]"


async def _chunks(
    factory: async_sessionmaker[AsyncSession],
    scope: Scope,
    filters: AccountFilters,
    district_path: str | None,
    render: Callable[[AsyncSession, list[Account]], Awaitable[bytes]],
) -> AsyncIterator[bytes]:
    """Every visible account matching the filters, EXPORT_PAGE at a time in (platform, handle)
    order, each page read and rendered in a short transaction of its own.

    An export streams for as long as its client takes to read it; a session held over the
    whole download would let a few slow (or stalled) readers hold every pooled connection, and
    keep a snapshot open that holds back vacuum. So the connection goes back to the pool
    before each chunk is handed to the client, and the next page continues from the keyset
    (platform, handle key) of the last row: every account is written at most once and in
    order. The price is that the file is not one snapshot: an account registered, moved or
    changed while the download runs appears as it is when its page is read (or not at all,
    if it moved out of the caller's scope or behind the cursor). Reading a page of 1,000
    accounts with their owners takes milliseconds, so the whole export costs the database
    what it did, in slices."""
    after: tuple[str, str] | None = None
    while True:
        async with factory() as session, session.begin():
            rows = await accounts_repository.search(
                session, scope, filters, after=after, limit=EXPORT_PAGE, district_path=district_path
            )
            chunk = await render(session, rows) if rows else b""
        if chunk:
            yield chunk
        if len(rows) < EXPORT_PAGE:
            return
        after = (rows[-1].platform, rows[-1].handle_key)


def _csv_row(account: Account, owners: Sequence[Any]) -> list[str]:
    by_role: dict[str, list[str]] = {"primary": [], "backup": []}
    for owner in owners:
        by_role[owner.role].append(owner.person)
    return [
        account.platform,
        account.handle,
        account.profile_url,
        account.display_name or "",
        account.district_id,
        account.status,
        csv_format.join_list(by_role["primary"]),
        csv_format.join_list(by_role["backup"]),
        account.purpose or "",
        account.language or "",
        account.country or "",
        csv_format.join_list(account.tags),
        account.notes or "",
    ]


# --- checking -------------------------------------------------------------------------------


def _decide(
    parsed: ParsedFile,
    found: dict[tuple[str, str], tuple[dict[str, Any], str]],
    owners: dict[uuid.UUID, list[dict[str, Any]]],
    scope: Scope,
) -> ImportPlan:
    """Each candidate against the account it names, if any: created, changed or unchanged
    (faults go to parsed.errors)."""
    plan = ImportPlan(parsed.header, scope.principal.sub, rows=parsed.rows)
    for candidate in parsed.candidates:
        existing = found.get(candidate.key)
        try:
            if existing is None:
                plan.creations.append(_creation(candidate, scope, plan))
                continue
            stored, path = existing
            before = sorted(
                (Owner.model_validate(o) for o in owners.get(stored["id"], [])), key=_owner_order
            )
            change = _change(candidate, scope, plan, stored, path, before)
        except RowFault as fault:
            parsed.errors.append(
                RowError(line=candidate.line, column=fault.column, message=fault.message)
            )
            continue
        if change is None:
            plan.unchanged += 1
        else:
            plan.changes.append(change)
    return plan


def _owners(row: ImportRow, header: tuple[str, ...], before: list[Owner]) -> list[Owner]:
    """The owners after the row: the roles whose column is in the file are replaced; a person
    who stays keeps their details."""
    given = {role: getattr(row, col) for col, role in OWNER_COLUMNS.items() if col in header}
    if all(
        sorted(people) == [o.person for o in before if o.role == role]
        for role, people in given.items()
    ):
        return before  # nothing new (before is in _owner_order: by person within a role)
    known = {o.person: o for o in before}
    owners = [o for o in before if o.role not in given]
    for role, people in given.items():
        for person in people:
            old = known.get(person)
            owners.append(
                Owner(person=person, role=role)
                if old is None
                else old.model_copy(update={"role": role})
            )
    seen: set[str] = set()
    for owner in owners:
        if owner.person in seen:
            raise RowFault(
                f"owner_{owner.role}", f"{owner.person!r} appears twice among the owners."
            )
        seen.add(owner.person)
    if len(owners) > MAX_OWNERS:
        raise RowFault("owner_primary", f"An account has at most {MAX_OWNERS} owners.")
    owners.sort(key=_owner_order)
    return owners


def _owner_order(owner: Owner) -> tuple[bool, str]:
    """Primary first, then by person: one order for before and after, so they compare."""
    return owner.role != "primary", owner.person


def _details(
    row: ImportRow, header: tuple[str, ...], stored: dict[str, Any] | None
) -> dict[str, Any]:
    """The editable fields after the row: the file's where it has the column."""
    values: dict[str, Any] = {}
    for name in EDITABLE:
        if name in header:
            value = getattr(row, name)
            values[name] = sorted(set(value)) if name == "tags" else value
        elif stored is not None:
            values[name] = stored[name]
        else:
            values[name] = [] if name == "tags" else None
    return values


def _creation(candidate: Candidate, scope: Scope, plan: ImportPlan) -> Creation:
    row = candidate.row
    status = row.status or AccountStatus.PENDING
    if status == AccountStatus.ARCHIVED:
        raise RowFault("status", "An account is not registered as archived.")
    if status == AccountStatus.DUPLICATE:
        raise RowFault(
            "status", "A duplicate names its original: register it through the API (duplicate_of)."
        )
    if not scope.can_manage(candidate.district_path):
        raise RowFault(
            "district_id",
            f"Registering accounts in district {candidate.district_id!r} needs a manager role on"
            " it or above it.",
        )
    owners = _owners(row, plan.header, [])
    details = _details(row, plan.header, None)
    values = {
        "id": uuid.uuid4(),
        "platform": candidate.rules.key,
        "handle": candidate.handle,
        "handle_key": candidate.handle_key,
        "profile_url": candidate.rules.profile_url(candidate.handle),
        "district_id": candidate.district_id,
        "status": status,
        "duplicate_of": None,
        "search_text": search_text(candidate.handle_key, details["display_name"]),
        "created_by": plan.actor,
        "version": 1,
        **details,
    }
    return Creation(values, owners)


def _change(
    candidate: Candidate,
    scope: Scope,
    plan: ImportPlan,
    stored: dict[str, Any],
    path: str,
    owners_before: list[Owner],
) -> Change | None:
    row = candidate.row
    if not scope.can_read(path):
        raise RowFault(
            candidate.name_column,
            f"{candidate.rules.name} {stored['handle']!r} is already registered in a district"
            " outside yours.",
        )
    details = _details(row, plan.header, stored)
    owners = _owners(row, plan.header, owners_before)
    current = stored["status"]
    status = row.status if "status" in plan.header and row.status else current
    owners_changed = owners != owners_before
    if (
        candidate.district_id == stored["district_id"]
        and all(stored[k] == v for k, v in details.items())
        and not owners_changed
        and status == current
    ):
        return None
    if not scope.can_manage(path):
        raise RowFault(
            "district_id",
            f"Changing accounts of district {stored['district_id']!r} needs a manager role on it"
            " or above it.",
        )
    if candidate.district_id != stored["district_id"] and not scope.can_manage(
        candidate.district_path
    ):
        raise RowFault(
            "district_id",
            f"Moving accounts to district {candidate.district_id!r} needs a manager role on it or"
            " above it.",
        )
    if status != current:
        allowed = TRANSITIONS[current]
        if status == AccountStatus.DUPLICATE:
            raise RowFault(
                "status", "Marking a duplicate names its original: do it through the API."
            )
        if status not in allowed:
            raise RowFault(
                "status",
                f"An account that is {current} cannot become {status}"
                f" (allowed: {', '.join(sorted(allowed))}).",
            )
    before = Account(**stored)
    after = Account(**{**stored, **details, "district_id": candidate.district_id})
    changes = audit.diff(audit_state(before, owners_before), audit_state(after, owners))
    if changes:
        after.version = before.version + 1
        after.search_text = search_text(after.handle_key, after.display_name)
    return Change(stored, after, owners, owners_changed, changes, status)


# --- writing --------------------------------------------------------------------------------


def _batches(items: Sequence[T]) -> Iterator[Sequence[T]]:
    iterator = iter(items)
    while batch := list(islice(iterator, WRITE_BATCH)):
        yield batch


async def _write_creations(
    session: AsyncSession, creations: Sequence[Creation], actor: str, request_id: str | None
) -> None:
    rows: list[tuple[Any, ...]] = []
    owners: list[tuple[Any, ...]] = []
    entries: list[tuple[Any, ...]] = []
    events: list[tuple[str, EventData]] = []
    for creation in creations:
        account = Account(**creation.values)
        rows.append(tuple(getattr(account, column) for column in repository.ACCOUNT_COLUMNS))
        owners.extend(
            (account.id, o.person, o.role, o.name, o.email, o.active) for o in creation.owners
        )
        state = snapshot(account, creation.owners)
        entries.append(
            _entry(account.id, "registered", actor, request_id, state.model_dump(mode="json"))
        )
        events.append((str(account.id), AccountRegistered(**state.model_dump())))
    try:
        await repository.insert_accounts(session, rows)
    except asyncpg.UniqueViolationError as exc:
        raise ImportConflict(
            "An account of the file was registered by someone else while the import ran;"
            " nothing was imported. Run the import again.",
        ) from exc
    await repository.insert_owners(session, owners)
    await repository.insert_audit(session, entries)
    await messaging.publisher.publish_many(session, events)


async def _write_changes(
    session: AsyncSession, changes: Sequence[Change], actor: str, request_id: str | None
) -> None:
    updates: list[dict[str, Any]] = []
    replaced: list[uuid.UUID] = []
    owners: list[tuple[Any, ...]] = []
    entries: list[tuple[Any, ...]] = []
    events: list[tuple[str, EventData]] = []
    for change in changes:
        after, subject = change.after, str(change.after.id)
        if change.changes:
            entries.append(_entry(after.id, "updated", actor, request_id, change.changes))
            state = snapshot(after, change.owners)
            events.append(
                (subject, AccountUpdated(**state.model_dump(), changed=sorted(change.changes)))
            )
        previous = change.before["status"]
        if change.status != previous:
            # As accounts.apply_status: its own version, audit entry and event. The import never
            # makes a duplicate, so it can only end one.
            after.status, after.duplicate_of, after.version = change.status, None, after.version + 1
            audited, event = status_changed(after, previous, IMPORT_REASON)
            entries.append(_entry(after.id, "status_changed", actor, request_id, audited))
            events.append((subject, event))
        updates.append(
            {
                "id": after.id,
                "district_id": after.district_id,
                "display_name": after.display_name,
                "purpose": after.purpose,
                "language": after.language,
                "country": after.country,
                "tags": list(after.tags),
                "notes": after.notes,
                "status": after.status,
                "duplicate_of": after.duplicate_of,
                "search_text": after.search_text,
                "version": after.version,
            }
        )
        if change.owners_changed:
            replaced.append(after.id)
            owners.extend(
                (after.id, o.person, o.role, o.name, o.email, o.active) for o in change.owners
            )
    await repository.update_accounts(session, updates)
    await repository.delete_owners(session, replaced)
    await repository.insert_owners(session, owners)
    await repository.insert_audit(session, entries)
    await messaging.publisher.publish_many(session, events)


def _entry(
    account_id: uuid.UUID, action: str, actor: str, request_id: str | None, changes: Any
) -> tuple[Any, ...]:
    """An audit row as audit.record writes it."""
    return ("account", str(account_id), action, actor, request_id, json.dumps(changes))


transfer = TransferService()
