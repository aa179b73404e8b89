"""Districts: a tree of regions, districts and teams, owned here and replicated elsewhere
through the district events."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.districts import DistrictNotFound, Scope, within
from chassis.errors import Conflict, Forbidden, Unprocessable
from chassis.pagination import InvalidCursor, Page, PageRequest, cursor_key, keyset_page
from chassis.principal import DISTRICT_ID_PATTERN
from services.inventory import audit
from services.inventory.districts import repository
from services.inventory.districts.schemas import (
    DistrictCreate,
    DistrictMove,
    DistrictOut,
    DistrictRename,
)
from services.inventory.events import (
    DistrictCreated,
    DistrictMoved,
    DistrictRenamed,
    DistrictSnapshot,
)
from services.inventory.models import District
from services.inventory.vocabulary import DistrictKind

_LABEL = DISTRICT_ID_PATTERN.removeprefix("^").removesuffix("$")
_PATH = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
# A child sits at its parent's level or below it.
KIND_RANK: dict[str, int] = {DistrictKind.REGION: 0, DistrictKind.DISTRICT: 1, DistrictKind.TEAM: 2}


class DistrictExists(Conflict):
    type_slug = "district-exists"
    title = "District already exists"


class InvalidTree(Unprocessable):
    type_slug = "invalid-district-tree"
    title = "The district tree does not allow this"


def snapshot(district: District) -> DistrictSnapshot:
    """The district as its events carry it (and its creation's audit entry records it)."""
    return DistrictSnapshot.model_validate(district, from_attributes=True)


class DistrictService:
    async def get_visible(self, session: AsyncSession, scope: Scope, district_id: str) -> District:
        district = await repository.find(session, district_id)
        if district is None or not scope.can_read(district.path):
            raise DistrictNotFound(f"No district {district_id!r}.")
        return district

    async def get_managed(
        self, session: AsyncSession, scope: Scope, district_id: str, what: str = "district"
    ) -> District:
        """A district the caller manages: 404 when they cannot read it, 403 when they only read
        it. The 403 names what managing it is needed for, as `{what} '<district id>'`."""
        district = await self.get_visible(session, scope, district_id)
        scope.require_manage(district.path, f"{what} {district.id!r}")
        return district

    async def subtree(
        self, session: AsyncSession, scope: Scope, district_id: str | None
    ) -> str | None:
        """The path a list is narrowed to: that of `district_id`, a district the caller reads
        (404 otherwise); None when the list is not narrowed."""
        if district_id is None:
            return None
        return (await self.get_visible(session, scope, district_id)).path

    async def create(self, session: AsyncSession, scope: Scope, data: DistrictCreate) -> District:
        if data.parent_id is None:
            # A root needs a regional manager grant naming it: the organisation's first act.
            if "regional_manager" not in scope.principal.roles_on(data.id):
                raise Forbidden("Creating a top-level district needs regional_manager on it.")
            if data.kind != DistrictKind.REGION:
                raise InvalidTree("A top-level district is a region.")
            path = data.id
        else:
            parent = await self.get_managed(session, scope, data.parent_id)
            _check_kinds(parent.kind, data.kind)
            path = f"{parent.path}.{data.id}"
        if await repository.find(session, data.id) is not None:
            raise DistrictExists(f"A district {data.id!r} exists already.", district_id=data.id)
        district = District(
            id=data.id, name=data.name, kind=data.kind, parent_id=data.parent_id, path=path
        )
        session.add(district)
        await session.flush()
        await session.refresh(district)
        state = snapshot(district)
        await audit.record_and_publish(
            session,
            entity_type="district",
            entity_id=district.id,
            action="created",
            actor=scope.principal.sub,
            changes=state.model_dump(mode="json"),
            event=DistrictCreated(**state.model_dump()),
        )
        return district

    async def rename(
        self, session: AsyncSession, scope: Scope, district_id: str, data: DistrictRename
    ) -> District:
        district = await self.get_managed(session, scope, district_id)
        if district.name == data.name:
            return district
        previous = district.name
        district.name = data.name
        district.updated_at = func.now()
        await session.flush()
        await session.refresh(district)
        await audit.record_and_publish(
            session,
            entity_type="district",
            entity_id=district.id,
            action="renamed",
            actor=scope.principal.sub,
            changes={"name": [previous, data.name]},
            event=DistrictRenamed(**snapshot(district).model_dump(), previous_name=previous),
        )
        return district

    async def move(
        self, session: AsyncSession, scope: Scope, district_id: str, data: DistrictMove
    ) -> District:
        district = await self.get_managed(session, scope, district_id)
        parent = await self.get_managed(session, scope, data.parent_id)
        if within(parent.path, district.path):
            raise InvalidTree("A district cannot move under itself or one of its own.")
        _check_kinds(parent.kind, district.kind)
        if district.parent_id == parent.id:
            return district
        old_path, new_path = district.path, f"{parent.path}.{district.id}"
        previous_parent = district.parent_id
        await repository.lock_subtree(session, old_path)
        await repository.move_subtree(session, district.id, parent.id, old_path, new_path)
        await session.refresh(district)
        await audit.record_and_publish(
            session,
            entity_type="district",
            entity_id=district.id,
            action="moved",
            actor=scope.principal.sub,
            changes={"parent_id": [previous_parent, parent.id], "path": [old_path, new_path]},
            event=DistrictMoved(
                **snapshot(district).model_dump(),
                previous_parent_id=previous_parent,
                previous_path=old_path,
            ),
        )
        return district

    async def list_visible(
        self, session: AsyncSession, scope: Scope, page: PageRequest, under: str | None
    ) -> Page[DistrictOut]:
        """One page of the districts the caller reads, in tree order (parents first)."""
        after = district_cursor(page.after) if page.after is not None else None
        if not scope.read_paths:
            return Page[DistrictOut](items=[])
        rows = await repository.list_in_tree_order(
            session,
            scope.read_paths,
            under=await self.subtree(session, scope, under),
            after=after,
            limit=page.fetch,
        )
        return keyset_page(rows, page, key=lambda d: [d.path], item=DistrictOut.model_validate)


def district_cursor(after: list[Any]) -> str:
    """The path a district cursor carries. It goes into an ltree cast, so it must be a path of
    district ids: anything else is a cursor this API did not issue (400), not a failed cast."""
    path: str = cursor_key(after, str)[0]
    if not _PATH.fullmatch(path):
        raise InvalidCursor("The cursor is not one this API issued.")
    return path


def _check_kinds(parent_kind: str, child_kind: str) -> None:
    if KIND_RANK[child_kind] < KIND_RANK[parent_kind]:
        raise InvalidTree(f"A {child_kind} cannot sit under a {parent_kind}.")


districts = DistrictService()
