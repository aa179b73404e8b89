"""Every query of policies, their versions and the approver roster."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, delete, func, or_, select, text, true
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.pagination import PageRequest, page_of
from services.approvals.models import Policy, PolicyVersion, RosterEntry, districts
from services.approvals.policies.schemas import StepSpec


@dataclass
class ChainEntry:
    """A live policy's current version, placed in the tree (`path` None: company-wide)."""

    policy_id: uuid.UUID
    district_id: str | None
    path: str | None
    version: int
    steps: list[StepSpec]

    @property
    def depth(self) -> int:
        return 0 if self.path is None else self.path.count(".") + 1


def _live_policies(subject_kind: str) -> Select[Any]:
    # A policy of a district the replica does not know has no place in any chain.
    return (
        select(Policy.id, Policy.district_id, districts.c.path, PolicyVersion)
        .join(
            PolicyVersion,
            and_(
                PolicyVersion.policy_id == Policy.id,
                PolicyVersion.version == Policy.current_version,
            ),
        )
        .outerjoin(districts, districts.c.id == Policy.district_id)
        .where(
            Policy.subject_kind == subject_kind,
            Policy.retired_at.is_(None),
            or_(Policy.district_id.is_(None), districts.c.path.is_not(None)),
        )
    )


async def live_policies(
    session: AsyncSession, subject_kind: str, path: str | None, *, below: bool = False
) -> list[ChainEntry]:
    """The live policies of `subject_kind` that apply at `path` (company-wide, ancestors',
    its own), top down; with `below`, also those of every district under it. `path` None:
    the company-wide policy, and with `below` every policy."""
    query = _live_policies(subject_kind)
    if path is None:
        if not below:
            query = query.where(Policy.district_id.is_(None))
    else:
        params: dict[str, Any] = {"chain_path": path}
        condition = "districts.path @> CAST(:chain_path AS ltree)"
        if below:
            condition += " OR districts.path <@ CAST(:chain_path AS ltree)"
        query = query.where(
            or_(Policy.district_id.is_(None), text(f"({condition})").bindparams(**params))
        )
    rows = (await session.execute(query)).all()
    entries = [
        ChainEntry(
            policy_id=policy_id,
            district_id=district_id,
            path=None if district_path is None else str(district_path),
            version=version.version,
            steps=[StepSpec.model_validate(step) for step in version.steps],
        )
        for policy_id, district_id, district_path, version in rows
    ]
    entries.sort(key=lambda e: (e.depth, e.path or ""))
    return entries


async def lock_subject_kind(session: AsyncSession, subject_kind: str) -> None:
    """Serialise policy writes of one subject kind until the transaction ends: the key and
    cycle checks read the whole chain above and below, which a concurrent write could
    change. Policy writes are rare, so one lock per kind costs nothing."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
        {"key": f"approvals.policies.{subject_kind}"},
    )


async def get_by_district(
    session: AsyncSession, district_id: str | None, subject_kind: str
) -> Policy | None:
    district = (
        Policy.district_id.is_(None) if district_id is None else Policy.district_id == district_id
    )
    found: Policy | None = await session.scalar(
        select(Policy).where(district, Policy.subject_kind == subject_kind).with_for_update()
    )
    return found


async def get_version(
    session: AsyncSession, policy_id: uuid.UUID, version: int
) -> PolicyVersion | None:
    return await session.get(PolicyVersion, (policy_id, version))


async def versions_of(session: AsyncSession, policy_id: uuid.UUID) -> list[PolicyVersion]:
    rows = await session.scalars(
        select(PolicyVersion)
        .where(PolicyVersion.policy_id == policy_id)
        .order_by(PolicyVersion.version)
    )
    return list(rows)


async def list_policies(
    session: AsyncSession,
    visible: Any,
    *,
    district_id: str | None,
    subject_kind: str | None,
    include_retired: bool,
    page: PageRequest,
) -> list[tuple[Policy, PolicyVersion]]:
    """Policies matching the filters with their current version, oldest first."""
    query = (
        select(Policy, PolicyVersion)
        .join(
            PolicyVersion,
            and_(
                PolicyVersion.policy_id == Policy.id,
                PolicyVersion.version == Policy.current_version,
            ),
        )
        .where(visible)
    )
    if district_id is not None:
        query = query.where(Policy.district_id == district_id)
    if subject_kind is not None:
        query = query.where(Policy.subject_kind == subject_kind)
    if not include_retired:
        query = query.where(Policy.retired_at.is_(None))
    query = page_of(query, Policy.created_at, Policy.id, page)
    return [(policy, version) for policy, version in (await session.execute(query)).all()]


async def roster(session: AsyncSession, district_id: str, role: str) -> list[str]:
    rows = await session.scalars(
        select(RosterEntry.person)
        .where(
            RosterEntry.district_id == district_id,
            RosterEntry.role == role,
            RosterEntry.active.is_(true()),
        )
        .order_by(RosterEntry.person)
    )
    return list(rows)


async def roster_size(session: AsyncSession, district_id: str, role: str) -> int:
    count = await session.scalar(
        select(func.count()).where(
            RosterEntry.district_id == district_id,
            RosterEntry.role == role,
            RosterEntry.active.is_(true()),
        )
    )
    return int(count or 0)


async def replace_roster(
    session: AsyncSession, district_id: str, role: str, people: list[str]
) -> None:
    await session.execute(
        delete(RosterEntry).where(
            RosterEntry.district_id == district_id,
            RosterEntry.role == role,
            RosterEntry.person.not_in(people),
        )
    )
    if people:
        statement = insert(RosterEntry).values(
            [{"district_id": district_id, "role": role, "person": p} for p in people]
        )
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[RosterEntry.district_id, RosterEntry.role, RosterEntry.person],
                set_={"active": True},
            )
        )
