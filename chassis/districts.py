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
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Column, DateTime, Index, MetaData, Table, Text, func, select, text
from sqlalchemy.dialects.postgresql import base as postgresql_base
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import UserDefinedType

from chassis.consumer import Handler
from chassis.errors import Forbidden
from chassis.events import CloudEvent
from chassis.principal import Principal

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
    it (a role on a district covers its subtree)."""

    principal: Principal
    read_paths: tuple[str, ...]
    role_paths: Mapping[str, tuple[str, ...]]

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
    for district_id, path in rows:
        read.append(path)
        for role in principal.roles_on(district_id):
            by_role.setdefault(role, []).append(path)
    return Scope(principal, tuple(read), {role: tuple(p) for role, p in by_role.items()})


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
