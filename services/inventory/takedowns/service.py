"""Found pages and their takedown cases.

A found page is an unofficial, rogue or fan page registered as an account; a takedown case
follows what is done about it, from ``open`` through ``reported`` (to the platform, with its
reference) and ``escalated`` to one of the final outcomes: ``removed`` (the account is
archived), ``kept`` or ``transferred`` (to the organisation: the account becomes official).
Account statuses change only through ``accounts.apply_status``.

A case lives in its account's district, so who may see and manage it follows the account's
district at the time the case was opened. Every change is audited (entity type ``takedown``)
and published (``takedown.opened``, ``takedown.updated``) in the same transaction; a plain note
is audited but not published, since it changes nothing another service acts on.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.districts import Scope
from chassis.errors import Conflict, NotFound, Unprocessable
from chassis.pagination import Page, PageRequest, keyset_page
from services.inventory import access, audit
from services.inventory.accounts import repository as account_repository
from services.inventory.accounts.schemas import AccountCreate
from services.inventory.accounts.service import TRANSITIONS as ACCOUNT_TRANSITIONS
from services.inventory.accounts.service import accounts
from services.inventory.districts.service import districts
from services.inventory.events import TakedownCaseChange, TakedownOpened, TakedownUpdated
from services.inventory.models import Account, TakedownCase, TakedownNote
from services.inventory.platforms import Registry, load_registry
from services.inventory.repository import get_with_path
from services.inventory.rows import from_row
from services.inventory.takedowns import repository
from services.inventory.takedowns.schemas import (
    FoundPageOut,
    FoundPageReport,
    PageBrief,
    TakedownDetail,
    TakedownOpen,
    TakedownOut,
    TakedownTransition,
    TimelineEntry,
)
from services.inventory.vocabulary import AccountStatus, TakedownStatus

_T = TakedownStatus
# Where each status may go (every status is a key; the final ones go nowhere).
TRANSITIONS: dict[str, frozenset[TakedownStatus]] = {
    _T.OPEN: frozenset({_T.REPORTED, _T.ESCALATED, _T.KEPT}),
    _T.REPORTED: frozenset({_T.ESCALATED, _T.REMOVED, _T.KEPT, _T.TRANSFERRED}),
    _T.ESCALATED: frozenset({_T.REPORTED, _T.REMOVED, _T.KEPT, _T.TRANSFERRED}),
    _T.REMOVED: frozenset(),
    _T.KEPT: frozenset(),
    _T.TRANSFERRED: frozenset(),
}
CLOSED = frozenset(status for status, allowed in TRANSITIONS.items() if not allowed)
# The account statuses a takedown can be about.
FOUND_PAGE_STATUSES = frozenset(
    {AccountStatus.ROGUE, AccountStatus.FAN, AccountStatus.UNOFFICIAL, AccountStatus.DUPLICATE}
)
# What a final outcome does to the account, where the account's own transitions allow it.
ACCOUNT_EFFECTS: dict[str, AccountStatus] = {
    TakedownStatus.REMOVED: AccountStatus.ARCHIVED,
    TakedownStatus.TRANSFERRED: AccountStatus.OFFICIAL,
}
# Plain notes per case; status changes are bounded by the case's own life.
MAX_NOTES_PER_CASE = 1000

CaseEvent = TypeVar("CaseEvent", bound=TakedownCaseChange)


class TakedownNotFound(NotFound):
    type_slug = "takedown-not-found"
    title = "Takedown case not found"


class TakedownUnderWay(Conflict):
    # "under way", not "open": `open` is only a case's first status, and a case that is
    # reported or escalated blocks a new one too.
    type_slug = "takedown-under-way"
    title = "The account already has a takedown case under way"


class PageAlreadyRegistered(Conflict):
    type_slug = "page-already-registered"
    title = "The page is already in the inventory in a way this report cannot change"


class NotAFoundPage(Unprocessable):
    type_slug = "not-a-found-page"
    title = "Only rogue, fan, unofficial and duplicate accounts get takedown cases"


class IllegalTakedownTransition(Unprocessable):
    type_slug = "illegal-takedown-transition"
    title = "That takedown status change is not allowed"


class PlatformReferenceRequired(Unprocessable):
    type_slug = "platform-reference-required"
    title = "Reporting to the platform needs its reference"


class TimelineFull(Conflict):
    type_slug = "takedown-timeline-full"
    title = "The case has as many notes as it can hold"


@dataclass(frozen=True)
class FoundPage:
    account: Account
    registered: bool
    case: TakedownDetail | None


def _event(
    model: type[CaseEvent], case: TakedownCase, account: Account, previous_status: str | None
) -> CaseEvent:
    """The case's event of type `model`: the case and its account as they are now."""
    return from_row(
        model,
        case,
        previous_status=previous_status,
        platform=account.platform,
        handle=account.handle,
        profile_url=account.profile_url,
        account_status=account.status,
    )


def _out(case: TakedownCase, account: Account) -> TakedownOut:
    return from_row(
        TakedownOut,
        case,
        account=PageBrief.model_validate(account, from_attributes=True),
        closed=case.status in CLOSED,
        allowed_transitions=sorted(TRANSITIONS[case.status]),
    )


class TakedownService:
    async def report(
        self, session: AsyncSession, scope: Scope, data: FoundPageReport
    ) -> FoundPageOut:
        """``report_found_page`` with the platforms' registry, as the API shows it."""
        found = await self.report_found_page(session, scope, await load_registry(session), data)
        return FoundPageOut(
            account=await accounts.out_one(session, found.account),
            registered=found.registered,
            case=found.case,
        )

    async def report_found_page(
        self, session: AsyncSession, scope: Scope, registry: Registry, data: FoundPageReport
    ) -> FoundPage:
        rules, raw_handle = registry.parse_url(data.profile_url)
        _, handle_key = rules.normalise(raw_handle)
        district = await districts.get_managed(
            session, scope, data.district_id, "accounts of district"
        )
        existing = await account_repository.find_by_key(session, rules.key, handle_key)
        registered = existing is None
        if existing is None:
            account = await accounts.register(
                session,
                scope,
                registry,
                AccountCreate(
                    profile_url=data.profile_url,
                    district_id=district.id,
                    status=data.classification,
                    display_name=data.display_name,
                    notes=data.notes,
                ),
            )
        else:
            account = await self._take_existing(session, scope, existing.id, data)
        evidence = [e.model_dump(mode="json") for e in data.evidence]
        # The account's trail says it was reported, with the evidence, case or no case.
        await audit.record(
            session,
            entity_type="account",
            entity_id=account.id,
            action="found_page_reported",
            actor=scope.principal.sub,
            changes={"classification": data.classification, "evidence": evidence},
        )
        case = None
        if data.open_case:
            case = await self._open(
                session,
                scope,
                account,
                evidence,
                data.notes or f"Found page reported as {data.classification}.",
            )
        return FoundPage(account=account, registered=registered, case=case)

    async def _take_existing(
        self,
        session: AsyncSession,
        scope: Scope,
        account_id: uuid.UUID,
        data: FoundPageReport,
    ) -> Account:
        """The already registered account, moved to the reported classification when its
        transitions allow; one the caller cannot see is only said to exist."""
        found = await get_with_path(session, Account, account_id, for_update=True)
        assert found is not None  # accounts are never deleted
        account, path = found
        if not scope.can_read(path):
            raise PageAlreadyRegistered(
                "The page is already registered in a district you cannot see."
            )
        scope.require_manage(path, "this account")
        if account.status == data.classification:
            return account
        allowed = ACCOUNT_TRANSITIONS[account.status]
        if data.classification not in allowed:
            raise PageAlreadyRegistered(
                f"The page is already registered as {account.status}, which cannot become "
                f"{data.classification}.",
                existing_account_id=str(account.id),
                current=account.status,
                allowed=sorted(allowed),
            )
        return await accounts.apply_status(
            session,
            account,
            data.classification,
            actor=scope.principal.sub,
            reason="reported as a found page",
            scope=scope,
        )

    async def open_for_account(
        self, session: AsyncSession, scope: Scope, account_id: uuid.UUID, data: TakedownOpen
    ) -> TakedownDetail:
        account = await accounts.get_managed(session, scope, account_id)
        if account.status not in FOUND_PAGE_STATUSES:
            raise NotAFoundPage(
                f"The account is {account.status}; a takedown case needs one of "
                f"{', '.join(sorted(FOUND_PAGE_STATUSES))}.",
                current=account.status,
            )
        return await self._open(
            session,
            scope,
            account,
            [e.model_dump(mode="json") for e in data.evidence],
            data.note or f"Case opened on a {account.status} account.",
        )

    async def _open(
        self,
        session: AsyncSession,
        scope: Scope,
        account: Account,
        evidence: list[dict[str, Any]],
        note: str,
    ) -> TakedownDetail:
        # The caller holds the account's row lock, so two cases cannot open side by side.
        under_way = await repository.find_under_way(session, account.id, CLOSED)
        if under_way is not None:
            raise TakedownUnderWay(
                "The account already has a takedown case under way.",
                existing_case_id=str(under_way),
            )
        case = TakedownCase(
            id=uuid.uuid4(),
            account_id=account.id,
            district_id=account.district_id,
            status=TakedownStatus.OPEN,
            evidence=evidence,
            opened_by=scope.principal.sub,
        )
        session.add(case)
        await session.flush()
        session.add(
            TakedownNote(
                case_id=case.id, author=scope.principal.sub, status=TakedownStatus.OPEN, text=note
            )
        )
        await session.flush()
        await session.refresh(case)
        await audit.record_and_publish(
            session,
            entity_type="takedown",
            entity_id=case.id,
            action="opened",
            actor=scope.principal.sub,
            changes={
                "account_id": str(account.id),
                "district_id": case.district_id,
                "status": TakedownStatus.OPEN,
                "evidence": evidence,
                "note": note,
            },
            event=_event(TakedownOpened, case, account, None),
        )
        return await self._detail(session, case, account)

    async def get(self, session: AsyncSession, scope: Scope, case_id: uuid.UUID) -> TakedownDetail:
        case, _ = await access.get_visible(session, scope, TakedownCase, case_id, TakedownNotFound)
        account = await repository.get_account(session, case.account_id)
        return await self._detail(session, case, account)

    async def transition(
        self,
        session: AsyncSession,
        scope: Scope,
        case_id: uuid.UUID,
        data: TakedownTransition,
    ) -> TakedownDetail:
        case = await self._get_managed(session, scope, case_id)
        allowed = TRANSITIONS[case.status]
        if data.status not in allowed:
            raise IllegalTakedownTransition(
                f"A case that is {case.status} cannot become {data.status}.",
                current=case.status,
                allowed=sorted(allowed),
            )
        if data.status == TakedownStatus.REPORTED and data.platform_reference is None:
            raise PlatformReferenceRequired(
                "Give the platform's reference (ticket or report id) when reporting."
            )
        account = await self._apply_effect(session, scope, case, data.status)
        previous_status, previous_reference = case.status, case.platform_reference
        case.status = data.status
        if data.platform_reference is not None:
            case.platform_reference = data.platform_reference
        case.updated_at = func.now()
        session.add(
            TakedownNote(
                case_id=case.id, author=scope.principal.sub, status=data.status, text=data.note
            )
        )
        await session.flush()
        await session.refresh(case)
        changes: dict[str, Any] = {"status": [previous_status, case.status], "note": data.note}
        if case.platform_reference != previous_reference:
            changes["platform_reference"] = [previous_reference, case.platform_reference]
        await audit.record_and_publish(
            session,
            entity_type="takedown",
            entity_id=case.id,
            action="status_changed",
            actor=scope.principal.sub,
            changes=changes,
            event=_event(TakedownUpdated, case, account, previous_status),
        )
        return await self._detail(session, case, account)

    async def _apply_effect(
        self, session: AsyncSession, scope: Scope, case: TakedownCase, status: str
    ) -> Account:
        """The account, after what the outcome does to it (archived when removed, official
        when transferred) if its own transitions allow; otherwise it is left as it is."""
        target = ACCOUNT_EFFECTS.get(status)
        if target is None:
            return await repository.get_account(session, case.account_id)
        account, path = await accounts.get_visible(session, scope, case.account_id, for_update=True)
        if account.status == target or target not in ACCOUNT_TRANSITIONS[account.status]:
            return account
        scope.require_manage(path, "the case's account")
        return await accounts.apply_status(
            session,
            account,
            target,
            actor=scope.principal.sub,
            reason=f"takedown case {case.id} {status}",
            scope=scope,
        )

    async def add_note(
        self, session: AsyncSession, scope: Scope, case_id: uuid.UUID, note_text: str
    ) -> TimelineEntry:
        case = await self._get_managed(session, scope, case_id)
        count = await repository.count_notes(session, case.id)
        if count >= MAX_NOTES_PER_CASE:
            raise TimelineFull(f"A case holds at most {MAX_NOTES_PER_CASE} notes.")
        note = TakedownNote(case_id=case.id, author=scope.principal.sub, text=note_text)
        session.add(note)
        await session.flush()
        await session.refresh(note)
        await audit.record(
            session,
            entity_type="takedown",
            entity_id=case.id,
            action="note_added",
            actor=scope.principal.sub,
            changes={"note_id": note.id, "text": note_text},
        )
        return TimelineEntry.model_validate(note)

    async def list_visible(
        self,
        session: AsyncSession,
        scope: Scope,
        page: PageRequest,
        *,
        statuses: tuple[str, ...] = (),
        district_id: str | None = None,
        account_id: uuid.UUID | None = None,
    ) -> Page[TakedownOut]:
        """One page of the visible cases, newest first (without their timelines)."""
        if not scope.read_paths:
            return Page[TakedownOut](items=[])
        rows = await repository.search(
            session,
            scope.read_paths,
            district_path=await districts.subtree(session, scope, district_id),
            statuses=statuses,
            account_id=account_id,
            after=page.after_key(datetime, uuid.UUID),
            limit=page.fetch,
        )
        return keyset_page(
            rows,
            page,
            key=lambda row: [row[0].created_at, row[0].id],
            item=lambda row: _out(*row),
        )

    async def _get_managed(
        self, session: AsyncSession, scope: Scope, case_id: uuid.UUID
    ) -> TakedownCase:
        """The case, locked for a change by a caller who manages its district: 404 when they
        cannot read it, 403 when they only read it."""
        case, path = await access.get_visible(
            session, scope, TakedownCase, case_id, TakedownNotFound, for_update=True
        )
        scope.require_manage(path, "this takedown case")
        return case

    async def _detail(
        self, session: AsyncSession, case: TakedownCase, account: Account
    ) -> TakedownDetail:
        notes = await repository.list_notes(session, case.id)
        return TakedownDetail(
            **_out(case, account).model_dump(),
            timeline=[TimelineEntry.model_validate(n) for n in notes],
        )


takedowns = TakedownService()
