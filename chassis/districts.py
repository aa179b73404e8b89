"""The district tree as every service sees it, and who may act where in it.

Inventory owns the tree. Every other service keeps a replica (``district_replica_table``) fed
by inventory's ``district.created`` / ``renamed`` / ``moved`` events through the handlers of
``DistrictReplica``, so "a grant applies to the subtree" is answered locally, without a call.

Districts have stable ids (slugs); their ``path`` (an ``ltree`` of ids from the root) is data
that changes when a district moves. Events of different districts travel on different
partitions, so a child's ``created`` can arrive after its parent's ``moved``: the replica
therefore derives a district's path from its parent's row when it has it, and re-roots the
subtree below a district whose path changed. A replayed or stale event converges on the same
rows.

``Scope`` turns a principal's grants into the paths where they read and where they hold given
roles; ``within`` is the one subtree test.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol, TypeVar

from fastapi import Depends, Request
from pydantic import BaseModel, ConfigDict
from sqlalchemy import (
    Column,
    ColumnElement,
    DateTime,
    Index,
    MetaData,
    Table,
    Text,
    false,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import base as postgresql_base
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import UserDefinedType

from chassis.consumer import Handler
from chassis.database import SessionDep
from chassis.errors import Forbidden, NotFound, Problem
from chassis.events import CloudEvent
from chassis.principal import Principal, PrincipalDep, effective_roles
from chassis.settings import organisation_settings

DISTRICT_CREATED = "chorus.inventory.district.created"
DISTRICT_RENAMED = "chorus.inventory.district.renamed"
DISTRICT_MOVED = "chorus.inventory.district.moved"

MANAGER_ROLES = frozenset({"regional_manager", "district_manager"})


class LTree(UserDefinedType[str]):
    """PostgreSQL ``ltree``; values travel as text."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "LTREE"


# So reflection (Alembic's comparisons) knows the type too.
postgresql_base.ischema_names["ltree"] = LTree


def within(path: str, root: str) -> bool:
    """The district at `path` is `root` or below it."""
    return path == root or path.startswith(root + ".")


@dataclass(frozen=True)
class Scope:
    """The caller's districts as ltree paths: where they read, and per role where they hold
    it (a role on a district covers its subtree). ``role_paths`` counts the roles a granted
    role includes (``chassis.principal.ROLE_INCLUDES``); ``granted_paths`` only the roles
    granted, for the approval steps that ask for an exact role."""

    principal: Principal
    read_paths: tuple[str, ...]
    role_paths: Mapping[str, tuple[str, ...]]
    granted_paths: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def manage_paths(self) -> tuple[str, ...]:
        return self.paths_with(MANAGER_ROLES)

    def paths_with(self, roles: Iterable[str]) -> tuple[str, ...]:
        return tuple(
            dict.fromkeys(path for role in roles for path in self.role_paths.get(role, ()))
        )

    def can_read(self, path: str) -> bool:
        return any(within(path, root) for root in self.read_paths)

    def has_role(self, path: str, roles: Iterable[str]) -> bool:
        return any(within(path, root) for root in self.paths_with(roles))

    def holds_exactly(self, path: str, role: str) -> bool:
        """`role` itself is granted on `path` or above it (not merely included by another)."""
        return any(within(path, root) for root in self.granted_paths.get(role, ()))

    def can_manage(self, path: str) -> bool:
        return self.has_role(path, MANAGER_ROLES)

    def require_manage(self, path: str, what: str = "this district") -> None:
        if not self.can_manage(path):
            raise Forbidden(f"Managing {what} needs a manager role on it or above it.")

    def require_role(self, path: str, roles: Iterable[str], what: str) -> None:
        roles = tuple(roles)
        if not self.has_role(path, roles):
            raise Forbidden(f"{what} needs one of the roles {', '.join(sorted(roles))} here.")


async def scope_of(session: AsyncSession, principal: Principal, districts: Table) -> Scope:
    """The principal's scope, from a table with ``id`` and ``path`` columns (inventory's own
    tree or a service's replica). Grants on districts the table does not know are ignored."""
    if not principal.grants:
        return Scope(principal, (), {})
    rows = await session.execute(
        select(districts.c.id, districts.c.path).where(districts.c.id.in_(list(principal.grants)))
    )
    read: list[str] = []
    by_role: dict[str, list[str]] = {}
    granted: dict[str, list[str]] = {}
    for district_id, path in rows:
        read.append(path)
        for role in principal.roles_on(district_id):
            granted.setdefault(role, []).append(path)
        for role in effective_roles(principal.roles_on(district_id)):
            by_role.setdefault(role, []).append(path)
    return Scope(
        principal,
        tuple(read),
        {role: tuple(p) for role, p in by_role.items()},
        {role: tuple(p) for role, p in granted.items()},
    )


def district_replica_table(metadata: MetaData) -> Table:
    return Table(
        "districts",
        metadata,
        Column("id", Text, primary_key=True),
        Column("name", Text, nullable=False),
        Column("kind", Text, nullable=False),
        Column("parent_id", Text),
        Column("path", LTree, nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Index("ix_districts_path", "path", postgresql_using="gist"),
    )


class DistrictEvent(BaseModel):
    """The fields of inventory's district events the replica reads."""

    model_config = ConfigDict(extra="ignore")

    id: str
    name: str
    kind: str
    parent_id: str | None = None
    path: str


class DistrictReplica:
    """Keeps a service's ``districts`` table in step with inventory's tree."""

    def __init__(self, table: Table) -> None:
        self.table = table

    @property
    def handlers(self) -> dict[str, Handler]:
        return {
            DISTRICT_CREATED: self.on_district_event,
            DISTRICT_RENAMED: self.on_district_event,
            DISTRICT_MOVED: self.on_district_event,
        }

    async def on_district_event(self, session: AsyncSession, event: CloudEvent) -> None:
        await self.apply(session, DistrictEvent.model_validate(event.data))

    async def apply(self, session: AsyncSession, district: DistrictEvent) -> None:
        """Upsert one district, then re-root everything below it if its path changed."""
        table = self.table
        path = district.path
        if district.parent_id is not None:
            parent_path = await session.scalar(
                select(table.c.path).where(table.c.id == district.parent_id)
            )
            if parent_path is not None:
                path = f"{parent_path}.{district.id}"
        await session.execute(
            insert(table)
            .values(
                id=district.id,
                name=district.name,
                kind=district.kind,
                parent_id=district.parent_id,
                path=path,
            )
            .on_conflict_do_update(
                index_elements=[table.c.id],
                set_={
                    "name": district.name,
                    "kind": district.kind,
                    "parent_id": district.parent_id,
                    "path": path,
                    "updated_at": func.now(),
                },
            )
        )
        # parent_id links are the truth: re-derive every path below this district (a move, or
        # children whose events arrived first). CYCLE guards against a corrupt replica.
        await session.execute(
            text(
                f"WITH RECURSIVE tree(id, path) AS ("
                f" SELECT id, path FROM {table.name} WHERE id = :id"
                f" UNION ALL SELECT child.id, tree.path || child.id"
                f" FROM {table.name} AS child JOIN tree ON child.parent_id = tree.id"
                f") CYCLE id SET looped USING route"
                f" UPDATE {table.name} AS d SET path = tree.path, updated_at = now()"
                f" FROM tree WHERE d.id = tree.id AND NOT tree.looped AND d.path <> tree.path"
            ),
            {"id": district.id},
        )


CENTRAL_ROLE = "regional_manager"


class DistrictNotFound(NotFound):
    type_slug = "district-not-found"
    title = "District not found"


def is_central(scope: Scope, central_districts: Iterable[str] | None = None) -> bool:
    """The caller is on the central team: a regional manager on one of the organisation's
    central districts (``CHORUS_CENTRAL_DISTRICTS``, by id; ``hq`` by default).

    This is the one definition every service uses. Being a regional manager of *some*
    top-level district is not enough: anyone who creates a new root (a subsidiary, an
    acquired brand) would otherwise manage everything company-wide."""
    central = frozenset(
        organisation_settings().central_districts
        if central_districts is None
        else central_districts
    )
    # A role path ends with the id of the district the role was granted on.
    return any(path.rsplit(".", 1)[-1] in central for path in scope.paths_with({CENTRAL_ROLE}))


def can_read(scope: Scope, path: str | None) -> bool:
    """May read an object of the district at `path` (None: a company-wide object, read by
    everyone holding any grant)."""
    if path is None:
        return bool(scope.read_paths)
    return scope.can_read(path)


def reaches(scope: Scope, path: str | None) -> bool:
    """May see an object of the district at `path` that applies to it and the districts
    below it (None: company-wide): it lies in a district the caller reads, or above one."""
    if path is None:
        return bool(scope.read_paths)
    return any(within(path, root) or within(root, path) for root in scope.read_paths)


def require_role(scope: Scope, path: str | None, roles: Iterable[str], what: str) -> None:
    """403 unless the caller holds one of `roles` on the district at `path` or above it; a
    company-wide object (None) needs the central team."""
    if path is None:
        if not is_central(scope):
            raise Forbidden(
                f"{what} company-wide needs the central team (a regional manager of a "
                "central district)."
            )
        return
    scope.require_role(path, roles, what)


class DistrictScoped(Protocol):
    district_id: Any


ScopedT = TypeVar("ScopedT", bound=DistrictScoped)


class DistrictTree:
    """Questions about districts answered from a service's replica: scopes, paths, and the
    SQL filters of visibility and inheritance."""

    def __init__(self, table: Table) -> None:
        self.table = table

    async def scope_of(self, session: AsyncSession, principal: Principal) -> Scope:
        return await scope_of(session, principal, self.table)

    async def path_of(self, session: AsyncSession, district_id: str | None) -> str | None:
        """The district's path; None for company-wide, or for a district the replica does
        not know (callers then treat its objects as unseen)."""
        if district_id is None:
            return None
        path = await session.scalar(select(self.table.c.path).where(self.table.c.id == district_id))
        return None if path is None else str(path)

    async def district_path(self, session: AsyncSession, scope: Scope, district_id: str) -> str:
        """The path of a district the caller can read, or 404."""
        path = await self.path_of(session, district_id)
        if path is None or not scope.can_read(path):
            # The replica learns of a new district from inventory's events, moments later.
            raise DistrictNotFound(
                f"No district {district_id!r}. One created moments ago may still be arriving "
                "here: repeat the request with the Chorus-Consistency header that its creation "
                "returned."
            )
        return path

    async def load_scoped(
        self,
        session: AsyncSession,
        scope: Scope,
        model: type[ScopedT],
        object_id: Any,
        not_found: type[Problem],
        *,
        shared_down: bool = True,
        for_update: bool = False,
    ) -> tuple[ScopedT, str | None]:
        """The object with its district's path (None: company-wide), or `not_found` (404)
        when the caller may not see it: by ``reaches`` for what a district shares downwards,
        by ``can_read`` otherwise. An object of a district the replica does not know is
        unseen."""
        obj = await session.get(model, object_id, with_for_update=for_update)
        if obj is not None:
            path = await self.path_of(session, obj.district_id)
            known = obj.district_id is None or path is not None
            seen = reaches(scope, path) if shared_down else can_read(scope, path)
            if known and seen:
                return obj, path
        raise not_found(f"No {not_found.title.lower().removesuffix(' not found')} {object_id}.")

    def _ids_where(self, condition: str, **params: Any) -> Any:
        return select(self.table.c.id).where(
            text(condition.format(t=self.table.name)).bindparams(**params)
        )

    def visible(self, district_column: Any, scope: Scope) -> ColumnElement[bool]:
        """SQL: rows whose district the caller reads (company-wide rows included)."""
        if not scope.read_paths:
            return false()
        return or_(
            district_column.is_(None),
            district_column.in_(
                self._ids_where(
                    "{t}.path <@ CAST(:read_paths AS ltree[])", read_paths=list(scope.read_paths)
                )
            ),
        )

    def reaching(self, district_column: Any, scope: Scope) -> ColumnElement[bool]:
        """SQL: rows the caller may see by ``reaches``: company-wide rows, and those of the
        districts they read, below them or above them."""
        if not scope.read_paths:
            return false()
        return or_(
            district_column.is_(None),
            district_column.in_(
                self._ids_where(
                    "({t}.path <@ CAST(:reach_paths AS ltree[])"
                    " OR {t}.path @> CAST(:reach_paths AS ltree[]))",
                    reach_paths=list(scope.read_paths),
                )
            ),
        )

    def in_subtree(self, district_column: Any, path: str) -> ColumnElement[bool]:
        """SQL: rows of the district at `path` or below it."""
        condition: ColumnElement[bool] = district_column.in_(
            self._ids_where("{t}.path <@ CAST(:subtree_path AS ltree)", subtree_path=path)
        )
        return condition

    def applies_to(self, district_column: Any, path: str | None) -> ColumnElement[bool]:
        """SQL: rows that apply to the district at `path`: company-wide rows and those of the
        district or its ancestors (what is inherited down the tree). With `path` None only
        company-wide rows apply."""
        if path is None:
            company_only: ColumnElement[bool] = district_column.is_(None)
            return company_only
        return or_(
            district_column.is_(None),
            district_column.in_(
                self._ids_where("{t}.path @> CAST(:target_path AS ltree)", target_path=path)
            ),
        )


async def request_scope(request: Request, session: SessionDep, principal: PrincipalDep) -> Scope:
    """Dependency: the caller's scope over the service's tree (``app.state.district_tree``,
    set by ``create_service_app``), read once per request."""
    tree: DistrictTree = request.app.state.district_tree
    return await tree.scope_of(session, principal)


ScopeDep = Annotated[Scope, Depends(request_scope)]
