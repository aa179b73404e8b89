"""The accounts posts may target, as the calendar knows them from the inventory."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy import text, tuple_

from chassis.database import SessionDep
from chassis.errors import problem_responses
from chassis.pagination import InvalidCursor, Page, PageDep, cursor_key, encode_cursor
from chassis.principal import PrincipalDep
from services.calendar.access import DistrictNotFound, district_path, scope_of
from services.calendar.accounts.service import visible_accounts
from services.calendar.models import Account, districts

router = APIRouter(tags=["accounts"])


class AccountOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    platform: str
    handle: str
    display_name: str | None
    profile_url: str | None
    district_id: str
    status: str


@router.get(
    "/accounts",
    response_model=Page[AccountOut],
    summary="Accounts posts may target",
    responses=problem_responses(DistrictNotFound, InvalidCursor),
)
async def list_accounts(
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    district_id: Annotated[
        str | None, Query(max_length=100, description="That district and those below it")
    ] = None,
    platform: Annotated[str | None, Query(max_length=32)] = None,
    status: Annotated[
        str | None, Query(max_length=32, description="official by default; 'any' for all")
    ] = "official",
) -> Page[AccountOut]:
    """The inventory's accounts in the districts the caller reads, by platform and handle.
    Only official accounts can be targeted; the others are listed with `status=any`."""
    scope = await scope_of(session, principal)
    query = visible_accounts(scope)
    if district_id is not None:
        path = await district_path(session, scope, district_id)
        query = query.where(
            Account.district_id.in_(
                districts.select()
                .with_only_columns(districts.c.id)
                .where(text("districts.path <@ CAST(:subtree AS ltree)").bindparams(subtree=path))
            )
        )
    if platform is not None:
        query = query.where(Account.platform == platform)
    if status is not None and status != "any":
        query = query.where(Account.status == status)
    if page.after is not None:
        after = cursor_key(page.after, str, str, uuid.UUID)
        query = query.where(tuple_(Account.platform, Account.handle, Account.id) > after)
    rows = list(
        await session.scalars(
            query.order_by(Account.platform, Account.handle, Account.id).limit(page.limit + 1)
        )
    )
    items = [AccountOut.model_validate(a) for a in rows[: page.limit]]
    cursor = None
    if len(rows) > page.limit:
        last = rows[page.limit - 1]
        cursor = encode_cursor([last.platform, last.handle, str(last.id)])
    return Page(items=items, next_cursor=cursor)
