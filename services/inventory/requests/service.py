"""Account requests: a district asks for a new official account, approvals decides.

Asking publishes `account.requested` with a snapshot of what is to be approved and its hash;
approvals answers with `approval.granted` or `approval.rejected`, handled here. A grant
registers the account as official (or, if someone registered the handle meanwhile, links and
promotes that one); a rejection closes the request. Every way a request ends (approved,
rejected, cancelled) publishes `account.request_closed`, so approvals can drop a request that
was withdrawn.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.districts import Scope, within
from chassis.errors import Conflict, Forbidden, NotFound
from chassis.pagination import Page, PageRequest, keyset_page
from services.inventory import access, audit, events
from services.inventory.access import REQUESTER_ROLES, taken
from services.inventory.accounts import repository as accounts_repository
from services.inventory.accounts.schemas import Owner
from services.inventory.accounts.service import (
    TRANSITIONS,
    accounts,
    search_text,
    snapshot,
)
from services.inventory.districts import repository as districts_repository
from services.inventory.districts.service import districts
from services.inventory.models import Account, AccountRequest, District
from services.inventory.platforms import load_registry
from services.inventory.repository import get_with_path
from services.inventory.requests import repository
from services.inventory.requests.schemas import AccountRequestCreate, AccountRequestOut
from services.inventory.rows import from_row
from services.inventory.vocabulary import AccountStatus, OwnerRole, RequestStatus

log = logging.getLogger("inventory.requests")

# How approvals knows an account request among the subjects it decides (`subject_kind`).
SUBJECT_KIND = "account_request"
# Who the audit trail names for what a decision of the approvals service changed.
APPROVALS_ACTOR = "approvals"


class AccountRequestNotFound(NotFound):
    type_slug = "account-request-not-found"
    title = "Account request not found"


class AccountRequestExists(Conflict):
    type_slug = "account-request-exists"
    title = "An open request for this account exists"


class AccountRequestClosed(Conflict):
    type_slug = "account-request-closed"
    title = "The request is no longer open"


def request_snapshot(request: AccountRequest, profile_url: str) -> events.RequestedAccount:
    """What the approvers approve: the account as it will be registered."""
    return from_row(events.RequestedAccount, request, profile_url=profile_url)


def content_hash(content: events.RequestedAccount) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces, UTF-8) of `content`."""
    canonical = json.dumps(
        content.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class AccountRequestService:
    async def list_visible(
        self,
        session: AsyncSession,
        scope: Scope,
        page: PageRequest,
        *,
        statuses: Sequence[str],
        district_id: str | None,
    ) -> Page[AccountRequestOut]:
        """One page of the requests of the caller's districts, newest first."""
        after = page.after_key(datetime, uuid.UUID)
        if not scope.read_paths:
            return Page[AccountRequestOut](items=[])
        rows = await repository.search(
            session,
            scope.read_paths,
            statuses=statuses,
            district_path=await districts.subtree(session, scope, district_id),
            after=after,
            limit=page.fetch,
        )
        return keyset_page(
            rows,
            page,
            key=lambda r: [r.created_at, r.id],
            item=AccountRequestOut.model_validate,
        )

    async def create(
        self, session: AsyncSession, scope: Scope, data: AccountRequestCreate
    ) -> AccountRequestOut:
        registry = await load_registry(session)
        rules, handle, handle_key = registry.resolve(data.platform, data.handle, data.profile_url)
        district = await districts.get_visible(session, scope, data.district_id)
        await self._require_requester(session, scope, district)
        # Two people asking for the same handle at once: the second waits here and then sees
        # the first one's open request.
        await repository.lock_handle(session, rules.key, handle_key)
        # Either conflict names what holds the handle only to a caller who can see it.
        await accounts.refuse_registered(session, scope, rules.key, rules.name, handle, handle_key)
        holder = await repository.find_open(session, rules.key, handle_key)
        if holder is not None:
            open_request, path = holder
            raise taken(
                AccountRequestExists,
                scope,
                path,
                f"{rules.name} {handle!r} is already requested",
                existing_request_id=str(open_request.id),
                existing_district_id=open_request.district_id,
            )
        request = AccountRequest(
            id=uuid.uuid4(),
            district_id=district.id,
            platform=rules.key,
            handle=handle,
            handle_key=handle_key,
            display_name=data.display_name,
            purpose=data.purpose.strip(),
            language=data.language,
            country=data.country,
            requested_by=scope.principal.sub,
            status=RequestStatus.OPEN,
        )
        session.add(request)
        await session.flush()
        await session.refresh(request)
        content = request_snapshot(request, rules.profile_url(handle))
        await audit.record_and_publish(
            session,
            entity_type="account_request",
            entity_id=request.id,
            action="requested",
            actor=scope.principal.sub,
            changes=content.model_dump(mode="json"),
            event=events.AccountRequested(
                request_id=request.id,
                **content.model_dump(),
                snapshot=content,
                content_hash=content_hash(content),
            ),
        )
        return AccountRequestOut.model_validate(request)

    async def read(
        self, session: AsyncSession, scope: Scope, request_id: uuid.UUID
    ) -> AccountRequestOut:
        request, _ = await access.get_visible(
            session, scope, AccountRequest, request_id, AccountRequestNotFound
        )
        return AccountRequestOut.model_validate(request)

    async def cancel(
        self, session: AsyncSession, scope: Scope, request_id: uuid.UUID
    ) -> AccountRequestOut:
        request, path = await access.get_visible(
            session, scope, AccountRequest, request_id, AccountRequestNotFound, for_update=True
        )
        if request.requested_by != scope.principal.sub and not scope.can_manage(path):
            raise Forbidden("Only the requester or a manager of the district may cancel it.")
        if request.status != RequestStatus.OPEN:
            raise AccountRequestClosed(
                f"The request is {request.status} already.", request_status=request.status
            )
        await self._close(session, request, RequestStatus.CANCELLED, actor=scope.principal.sub)
        return AccountRequestOut.model_validate(request)

    async def decide(
        self,
        session: AsyncSession,
        request_id: uuid.UUID,
        *,
        granted: bool,
        comment: str | None,
        decided_by: str | None,
    ) -> AccountRequest | None:
        """Approvals decided the request: granted, the account becomes official and the request
        is approved; rejected, the request is closed. A decision on a request that is unknown
        or no longer open changes nothing (None)."""
        request = await self._open_for_decision(
            session, request_id, "granted" if granted else "rejected"
        )
        if request is None:
            return None
        account_id = (await self._approved_account(session, request)).id if granted else None
        await self._close(
            session,
            request,
            RequestStatus.APPROVED if granted else RequestStatus.REJECTED,
            actor=APPROVALS_ACTOR,
            comment=comment,
            decided_by=decided_by,
            account_id=account_id,
        )
        return request

    async def _approved_account(self, session: AsyncSession, request: AccountRequest) -> Account:
        """The official account a grant leaves: a new one, or the one registered by hand for
        the handle while the request waited (that one is approved, and made official where its
        status transitions allow)."""
        account = await accounts_repository.find_by_key(
            session, request.platform, request.handle_key
        )
        if account is None:
            return await self._register_official(session, request)
        locked = await get_with_path(session, Account, account.id, for_update=True)
        assert locked is not None
        account = locked[0]
        if (
            account.status != AccountStatus.OFFICIAL
            and AccountStatus.OFFICIAL in TRANSITIONS[account.status]
        ):
            await accounts.apply_status(
                session,
                account,
                AccountStatus.OFFICIAL,
                actor=APPROVALS_ACTOR,
                reason=f"Account request {request.id} approved",
            )
        return account

    async def _open_for_decision(
        self, session: AsyncSession, request_id: uuid.UUID, decision: str
    ) -> AccountRequest | None:
        found = await get_with_path(session, AccountRequest, request_id, for_update=True)
        if found is None:
            log.warning("approval %s of unknown account request %s ignored", decision, request_id)
            return None
        request = found[0]
        if request.status != RequestStatus.OPEN:
            log.info(
                "approval %s of account request %s ignored: it is %s",
                decision,
                request_id,
                request.status,
            )
            return None
        return request

    async def _register_official(self, session: AsyncSession, request: AccountRequest) -> Account:
        """The requested account, official from the start, its requester as primary owner.
        No Scope here: approvals' decision is the authority."""
        rules = (await load_registry(session)).get(request.platform)
        owners = [Owner(person=request.requested_by, role=OwnerRole.PRIMARY)]
        account = Account(
            id=uuid.uuid4(),
            platform=rules.key,
            handle=request.handle,
            handle_key=request.handle_key,
            profile_url=rules.profile_url(request.handle),
            display_name=request.display_name,
            district_id=request.district_id,
            purpose=request.purpose,
            language=request.language,
            country=request.country,
            tags=[],
            status=AccountStatus.OFFICIAL,
            search_text=search_text(request.handle_key, request.display_name),
            created_by=request.requested_by,
        )
        session.add(account)
        await session.flush()
        await accounts_repository.replace_owners(
            session, account.id, [o.model_dump() for o in owners]
        )
        await session.refresh(account)
        registered = events.AccountRegistered(
            **snapshot(account, owners).model_dump(), request_id=request.id
        )
        await audit.record_and_publish(
            session,
            entity_type="account",
            entity_id=account.id,
            action="registered",
            actor=APPROVALS_ACTOR,
            changes=registered.model_dump(mode="json"),
            event=registered,
        )
        return account

    async def _close(
        self,
        session: AsyncSession,
        request: AccountRequest,
        status: str,
        *,
        actor: str,
        comment: str | None = None,
        decided_by: str | None = None,
        account_id: uuid.UUID | None = None,
    ) -> None:
        previous = request.status
        request.status = status
        request.decision_comment = comment
        request.account_id = account_id
        request.decided_at = func.now()
        await session.flush()
        await session.refresh(request)
        changes: dict[str, Any] = {"status": [previous, status]}
        if comment is not None:
            changes["decision_comment"] = comment
        if decided_by is not None:
            changes["decided_by"] = decided_by
        if account_id is not None:
            changes["account_id"] = str(account_id)
        await audit.record_and_publish(
            session,
            entity_type="account_request",
            entity_id=request.id,
            action=status,
            actor=actor,
            changes=changes,
            # The request as closed: its status, account and comment are those just set.
            event=from_row(
                events.AccountRequestClosed, request, request_id=request.id, decided_by=decided_by
            ),
        )

    async def _require_requester(
        self, session: AsyncSession, scope: Scope, district: District
    ) -> None:
        """Asking needs a contributor or manager role on the district or above it."""
        if scope.can_manage(district.path):
            return
        granted = [d for d, roles in scope.principal.grants.items() if roles & REQUESTER_ROLES]
        if granted:
            roots = await districts_repository.find_paths(session, granted)
            if any(within(district.path, root) for root in roots):
                return
        raise Forbidden(
            f"Requesting an account for district {district.id!r} needs a contributor or"
            " manager role on it or above it."
        )


account_requests = AccountRequestService()
