"""Accounts: the organisation's presence on every platform, official or not.

Status changes follow TRANSITIONS only; anything else is a 422 that lists what is allowed.
Every change is audited and published (`account.registered`, `account.updated`,
`account.status_changed`) in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.districts import Scope
from chassis.errors import Conflict, NotFound, Unprocessable
from chassis.pagination import Page, PageRequest, keyset_page
from services.inventory import access, audit
from services.inventory.access import taken
from services.inventory.accounts import repository
from services.inventory.accounts.schemas import (
    AccountCreate,
    AccountFilters,
    AccountOut,
    AccountUpdate,
    AuditEntryOut,
    Flag,
    Owner,
    PresenceSummary,
    StatusChange,
    SummaryRow,
)
from services.inventory.districts.service import districts
from services.inventory.events import (
    AccountRegistered,
    AccountSnapshot,
    AccountStatusChanged,
    AccountUpdated,
)
from services.inventory.models import Account
from services.inventory.platforms import Registry, load_registry
from services.inventory.repository import get_with_path
from services.inventory.rows import from_row
from services.inventory.vocabulary import AccountStatus

_S = AccountStatus
# Where each status may go (every status is a key; rows hold it as plain str).
TRANSITIONS: dict[str, frozenset[AccountStatus]] = {
    _S.PENDING: frozenset(
        {_S.OFFICIAL, _S.UNOFFICIAL, _S.ROGUE, _S.FAN, _S.DUPLICATE, _S.ARCHIVED}
    ),
    _S.OFFICIAL: frozenset({_S.DORMANT, _S.ORPHANED, _S.DUPLICATE, _S.ARCHIVED}),
    _S.UNOFFICIAL: frozenset({_S.OFFICIAL, _S.ROGUE, _S.FAN, _S.DUPLICATE, _S.ARCHIVED}),
    _S.ROGUE: frozenset({_S.OFFICIAL, _S.UNOFFICIAL, _S.ARCHIVED}),
    _S.FAN: frozenset({_S.OFFICIAL, _S.UNOFFICIAL, _S.ROGUE, _S.ARCHIVED}),
    _S.DUPLICATE: frozenset({_S.UNOFFICIAL, _S.ARCHIVED}),
    _S.DORMANT: frozenset({_S.OFFICIAL, _S.ORPHANED, _S.ARCHIVED}),
    _S.ORPHANED: frozenset({_S.OFFICIAL, _S.DORMANT, _S.ARCHIVED}),
    _S.ARCHIVED: frozenset({_S.PENDING}),
}
EDITABLE = ("display_name", "purpose", "language", "country", "tags", "notes")


class AccountNotFound(NotFound):
    type_slug = "account-not-found"
    title = "Account not found"


class AccountExists(Conflict):
    type_slug = "account-exists"
    title = "The account is already in the inventory"


class IllegalTransition(Unprocessable):
    type_slug = "illegal-status-transition"
    title = "That status change is not allowed"


class InvalidDuplicate(Unprocessable):
    type_slug = "invalid-duplicate"
    title = "Not a valid original for a duplicate"


def search_text(handle_key: str, display_name: str | None) -> str:
    return f"{handle_key} {display_name or ''}".strip().lower()


def snapshot(account: Account, owners: Sequence[Owner]) -> AccountSnapshot:
    """The account as its events carry it, and as its audit trail compares it."""
    return from_row(AccountSnapshot, account, owners=[o.model_dump() for o in owners])


def audit_state(account: Account, owners: Sequence[Owner]) -> dict[str, Any]:
    """What an account's audit trail compares across a change: its snapshot and its notes."""
    return {**snapshot(account, owners).model_dump(mode="json"), "notes": account.notes}


def status_changed(
    account: Account, previous: str, reason: str | None
) -> tuple[dict[str, Any], AccountStatusChanged]:
    """What a status change audits and publishes, `account` being as the change leaves it (its
    status, original and version) and `previous` its status before: the one record of a status
    change, whether ``apply_status`` or the CSV import makes it."""
    changes: dict[str, Any] = {"status": [previous, account.status]}
    if reason:
        changes["reason"] = reason
    if account.duplicate_of:
        changes["duplicate_of"] = str(account.duplicate_of)
    event = from_row(AccountStatusChanged, account, previous_status=previous, reason=reason)
    return changes, event


class AccountService:
    async def create(self, session: AsyncSession, scope: Scope, data: AccountCreate) -> AccountOut:
        """Register an account as ``register`` does, shown as the API shows it."""
        account = await self.register(session, scope, await load_registry(session), data)
        return await self.out_one(session, account)

    async def read(self, session: AsyncSession, scope: Scope, account_id: uuid.UUID) -> AccountOut:
        account, _ = await self.get_visible(session, scope, account_id)
        return await self.out_one(session, account)

    async def list_visible(
        self,
        session: AsyncSession,
        scope: Scope,
        page: PageRequest,
        filters: AccountFilters,
    ) -> Page[AccountOut]:
        """One page of the accounts the caller can see, in (platform, handle) order."""
        district_path = await districts.subtree(session, scope, filters.district_id)
        after = page.after_key(str, str)
        rows = await repository.search(
            session, scope, filters, after=after, limit=page.fetch, district_path=district_path
        )
        shown = {item.id: item for item in await self.out(session, rows[: page.limit])}
        return keyset_page(
            rows, page, key=lambda a: [a.platform, a.handle_key], item=lambda a: shown[a.id]
        )

    async def summary(
        self, session: AsyncSession, scope: Scope, district_id: str | None
    ) -> PresenceSummary:
        """Counts of the visible presence per district, platform and status."""
        district_path = await districts.subtree(session, scope, district_id)
        rows = await repository.summary(session, scope, district_path) if scope.read_paths else []
        by_status: dict[str, int] = {}
        by_platform: dict[str, int] = {}
        by_district: dict[str, int] = {}
        for district, platform, state, count in rows:
            by_status[state] = by_status.get(state, 0) + count
            by_platform[platform] = by_platform.get(platform, 0) + count
            by_district[district] = by_district.get(district, 0) + count
        return PresenceSummary(
            total=sum(by_status.values()),
            by_status=by_status,
            by_platform=by_platform,
            by_district=by_district,
            rows=[SummaryRow(district_id=d, platform=p, status=s, count=n) for d, p, s, n in rows],
        )

    async def audit_trail(
        self, session: AsyncSession, scope: Scope, account_id: uuid.UUID, page: PageRequest
    ) -> Page[AuditEntryOut]:
        """Every change to the account, oldest first."""
        await self.get_visible(session, scope, account_id)
        (after_id,) = page.after_key(int) or (0,)
        rows = await audit.entries(
            session, "account", account_id, after_id=after_id, limit=page.fetch
        )
        return keyset_page(rows, page, key=lambda r: [r.id], item=AuditEntryOut.model_validate)

    async def out_one(self, session: AsyncSession, account: Account) -> AccountOut:
        return (await self.out(session, [account]))[0]

    async def out(self, session: AsyncSession, accounts: list[Account]) -> list[AccountOut]:
        ids = [a.id for a in accounts]
        owners = await repository.owners_of(session, ids)
        flags = await repository.open_flags_of(session, ids)
        return [
            AccountOut.model_validate(a).model_copy(
                update={
                    "owners": [Owner.model_validate(o) for o in owners.get(a.id, [])],
                    "flags": [Flag.model_validate(f) for f in flags.get(a.id, [])],
                }
            )
            for a in accounts
        ]

    async def get_visible(
        self,
        session: AsyncSession,
        scope: Scope,
        account_id: uuid.UUID,
        *,
        for_update: bool = False,
    ) -> tuple[Account, str]:
        return await access.get_visible(
            session, scope, Account, account_id, AccountNotFound, for_update=for_update
        )

    async def get_managed(
        self, session: AsyncSession, scope: Scope, account_id: uuid.UUID
    ) -> Account:
        """The account, locked for a change by a caller who manages its district: 404 when
        they cannot read it, 403 when they only read it."""
        account, path = await self.get_visible(session, scope, account_id, for_update=True)
        scope.require_manage(path, "this account")
        return account

    async def register(
        self, session: AsyncSession, scope: Scope, registry: Registry, data: AccountCreate
    ) -> Account:
        rules, handle, handle_key = registry.resolve(data.platform, data.handle, data.profile_url)
        district = await districts.get_managed(
            session, scope, data.district_id, "accounts of district"
        )
        await self.refuse_registered(session, scope, rules.key, rules.name, handle, handle_key)
        if data.status == AccountStatus.DUPLICATE:
            await self._check_original(session, scope, data.duplicate_of, rules.key, None)
        elif data.duplicate_of is not None:
            raise InvalidDuplicate("duplicate_of goes with the status duplicate only.")
        account = Account(
            id=uuid.uuid4(),
            platform=rules.key,
            handle=handle,
            handle_key=handle_key,
            profile_url=rules.profile_url(handle),
            display_name=data.display_name,
            district_id=district.id,
            purpose=data.purpose,
            language=data.language,
            country=data.country,
            tags=data.tags,
            notes=data.notes,
            status=data.status,
            duplicate_of=data.duplicate_of,
            search_text=search_text(handle_key, data.display_name),
            created_by=scope.principal.sub,
        )
        try:
            async with session.begin_nested():
                session.add(account)
                await session.flush()
        except IntegrityError:
            # Registered by a concurrent request since the check above.
            await self.refuse_registered(session, scope, rules.key, rules.name, handle, handle_key)
            raise
        await repository.replace_owners(session, account.id, [o.model_dump() for o in data.owners])
        await session.refresh(account)
        state = snapshot(account, data.owners)
        await audit.record_and_publish(
            session,
            entity_type="account",
            entity_id=account.id,
            action="registered",
            actor=scope.principal.sub,
            changes=state.model_dump(mode="json"),
            event=AccountRegistered(**state.model_dump()),
        )
        return account

    async def refuse_registered(
        self,
        session: AsyncSession,
        scope: Scope,
        platform: str,
        platform_name: str,
        handle: str,
        handle_key: str,
    ) -> None:
        """409 when the handle is registered; the existing account is named only to callers
        who can see it (its district is theirs)."""
        existing = await repository.find_by_key(session, platform, handle_key)
        if existing is None:
            return
        found = await get_with_path(session, Account, existing.id)
        raise taken(
            AccountExists,
            scope,
            found[1] if found is not None else None,
            f"{platform_name} {handle!r} is already registered",
            existing_account_id=str(existing.id),
            existing_district_id=existing.district_id,
        )

    async def update(
        self, session: AsyncSession, scope: Scope, account_id: uuid.UUID, data: AccountUpdate
    ) -> AccountOut:
        account = await self.get_managed(session, scope, account_id)
        owners_before = [
            Owner.model_validate(o)
            for o in (await repository.owners_of(session, [account.id])).get(account.id, [])
        ]
        # Notes stay out of events (they are internal) but their changes are audited.
        before = audit_state(account, owners_before)
        given = data.model_dump(exclude_unset=True)
        if "district_id" in given and given["district_id"] != account.district_id:
            target = await districts.get_managed(
                session, scope, given["district_id"], "accounts of district"
            )
            account.district_id = target.id
        for field in EDITABLE:
            if field in given:
                setattr(account, field, given[field] if field != "tags" else given[field] or [])
        owners_after = owners_before
        if data.owners is not None:
            owners_after = data.owners
            await repository.replace_owners(
                session, account.id, [o.model_dump() for o in data.owners]
            )
        after = audit_state(account, owners_after)
        changes = audit.diff(before, after)
        if not changes:
            return await self.out_one(session, account)
        account.search_text = search_text(account.handle_key, account.display_name)
        account.version += 1
        account.updated_at = func.now()
        await session.flush()
        await session.refresh(account)
        await audit.record_and_publish(
            session,
            entity_type="account",
            entity_id=account.id,
            action="updated",
            actor=scope.principal.sub,
            changes=changes,
            event=AccountUpdated(
                **snapshot(account, owners_after).model_dump(), changed=sorted(changes)
            ),
        )
        return await self.out_one(session, account)

    async def change_status(
        self, session: AsyncSession, scope: Scope, account_id: uuid.UUID, data: StatusChange
    ) -> AccountOut:
        account = await self.get_managed(session, scope, account_id)
        account = await self.apply_status(
            session,
            account,
            data.status,
            actor=scope.principal.sub,
            reason=data.reason,
            duplicate_of=data.duplicate_of,
            scope=scope,
        )
        return await self.out_one(session, account)

    async def apply_status(
        self,
        session: AsyncSession,
        account: Account,
        status: str,
        *,
        actor: str,
        reason: str | None,
        duplicate_of: uuid.UUID | None = None,
        scope: Scope | None = None,
    ) -> Account:
        """The one place a status changes (endpoints, approvals and detection come here)."""
        allowed = TRANSITIONS[account.status]
        if status not in allowed:
            raise IllegalTransition(
                f"An account that is {account.status} cannot become {status}.",
                current=account.status,
                allowed=sorted(allowed),
            )
        if status == AccountStatus.DUPLICATE:
            await self._check_original(session, scope, duplicate_of, account.platform, account.id)
        elif duplicate_of is not None:
            raise InvalidDuplicate("duplicate_of goes with the status duplicate only.")
        previous = account.status
        account.status = status
        account.duplicate_of = duplicate_of if status == AccountStatus.DUPLICATE else None
        account.version += 1
        account.updated_at = func.now()
        await session.flush()
        await session.refresh(account)
        changes, event = status_changed(account, previous, reason)
        await audit.record_and_publish(
            session,
            entity_type="account",
            entity_id=account.id,
            action="status_changed",
            actor=actor,
            changes=changes,
            event=event,
        )
        return account

    async def _check_original(
        self,
        session: AsyncSession,
        scope: Scope | None,
        original_id: uuid.UUID | None,
        platform: str,
        account_id: uuid.UUID | None,
    ) -> None:
        if original_id is None:
            raise InvalidDuplicate("A duplicate names its original in duplicate_of.")
        if original_id == account_id:
            raise InvalidDuplicate("An account cannot duplicate itself.")
        found = await get_with_path(session, Account, original_id)
        if found is None or (scope is not None and not scope.can_read(found[1])):
            raise InvalidDuplicate(f"No account {original_id} to be the original.")
        original = found[0]
        if original.platform != platform:
            raise InvalidDuplicate("The original is on another platform.")
        if original.status == AccountStatus.DUPLICATE:
            raise InvalidDuplicate("The original is itself a duplicate; name its original.")


accounts = AccountService()
