"""Approval policies: inherited down the district tree, versioned, and routed per subject.

The effective chain of a district D for a subject kind is the company-wide policy, then the
policies of D's ancestors from the top down, then D's own; each adds its steps after those
above it. A district cannot remove a step of its parent: there is no way to say so, and a step
key used higher in the chain is refused ("redefines an inherited step"). A key used by a
policy *below* is refused too, on the policy being written, so that no chain ever holds a key
twice whichever side was written first.

Each PUT writes a new version; requests keep the versions their plan was made from, so a
later change never alters a request in flight. Retiring a policy stops it from adding steps;
its versions stay. PUT on a retired policy brings it back with a new version (the
(district, subject kind) pair has one policy, whatever its history).

Writes of one subject kind are serialised (an advisory lock): the checks read the chains
above and below, which a concurrent write could otherwise invalidate.

``plan_for`` (module level) is what requests call to plan the steps of a subject.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from chassis.districts import Scope, is_central, reaches, within
from chassis.errors import Forbidden, NotFound, Unprocessable
from chassis.pagination import Page, PageRequest, keyset_page
from services.approvals.access import require_manage, tree
from services.approvals.models import Policy, PolicyVersion
from services.approvals.policies import matching, repository
from services.approvals.policies.repository import ChainEntry
from services.approvals.policies.schemas import (
    APPROVER_ROLES,
    Condition,
    EffectivePolicy,
    EffectiveStep,
    Plan,
    PlannedStep,
    PolicyDetail,
    PolicyOut,
    PolicyPut,
    PolicyUse,
    PolicyVersionInfo,
    PolicyVersionOut,
    RosterOut,
    StepSpec,
    SubjectFacts,
)
from services.approvals.vocabulary import OutsideReviewMode, SubjectKind


class PolicyNotFound(NotFound):
    type_slug = "policy-not-found"
    title = "Policy not found"


class PolicyVersionNotFound(NotFound):
    type_slug = "policy-version-not-found"
    title = "Policy version not found"


class InvalidPolicy(Unprocessable):
    type_slug = "invalid-policy"
    title = "The policy is not valid"


class StepRedefined(Unprocessable):
    type_slug = "step-redefined"
    title = "A step key is used elsewhere in the chain"


class EscalationCycle(Unprocessable):
    type_slug = "escalation-cycle"
    title = "The escalations form a cycle"


class UnknownRole(Unprocessable):
    type_slug = "unknown-role"
    title = "Not an approver role"


class UnknownDistrict(Unprocessable):
    type_slug = "unknown-district"
    title = "Unknown district"


class RosterHeldAbove(Forbidden):
    type_slug = "roster-kept-where-policy-is-defined"
    title = "A policy above relies on this roster: it is kept at that policy's level"


DEFAULT_STEP_KEY = "district-manager"
DEFAULT_REASON = "no policy applies: the district's manager decides"


# --- Validation ---------------------------------------------------------------------------


def _label(position: int, step: StepSpec) -> str:
    return f"Step {position} ({step.key!r})"


def _require_role(role: str, what: str, key: str) -> None:
    if role not in APPROVER_ROLES:
        raise InvalidPolicy(
            f"{what}: unknown role {role!r}; the approver roles are {', '.join(APPROVER_ROLES)}.",
            step=key,
        )


def _check_step(position: int, step: StepSpec) -> None:
    label = _label(position, step)
    _require_role(step.role, label, step.key)
    if step.escalate_to is not None:
        _require_role(step.escalate_to.role, f"{label} escalates to", step.key)
    if step.quorum.mode == "count" and step.quorum.count is None:
        raise InvalidPolicy(f"{label}: a quorum of mode 'count' needs a count.", step=step.key)
    if step.quorum.mode != "count" and step.quorum.count is not None:
        raise InvalidPolicy(
            f"{label}: a quorum count is only for mode 'count' (not {step.quorum.mode!r}).",
            step=step.key,
        )
    if step.deadline_hours is None:
        if step.remind_before_hours is not None:
            raise InvalidPolicy(
                f"{label}: remind_before_hours needs deadline_hours.", step=step.key
            )
        if step.escalate_to is not None:
            raise InvalidPolicy(
                f"{label}: escalate_to needs deadline_hours (escalation happens at the deadline).",
                step=step.key,
            )
    elif step.remind_before_hours is not None and step.remind_before_hours >= step.deadline_hours:
        raise InvalidPolicy(
            f"{label}: remind_before_hours ({step.remind_before_hours}) must be less than "
            f"deadline_hours ({step.deadline_hours}).",
            step=step.key,
        )
    if step.when is not None:
        _check_condition(label, step.key, step.when)


def _check_steps(steps: list[StepSpec]) -> None:
    for position, step in enumerate(steps, start=1):
        _check_step(position, step)
    load = matching.routing_load_problem([s.when for s in steps if s.when is not None])
    if load is not None:
        raise InvalidPolicy(f"Too much routing work: {load}.")


def _check_condition(label: str, key: str, when: Condition) -> None:
    # A condition with nothing to match never adds its step: almost surely a mistake.
    if not (
        any(k.strip() for k in when.keywords)
        or when.patterns
        or when.platforms
        or when.campaign_tags
    ):
        raise InvalidPolicy(
            f"{label}: `when` matches nothing (no keyword, pattern, platform or campaign tag);"
            " leave it out for a step that always applies.",
            step=key,
        )
    for pattern in when.patterns:
        problem = matching.pattern_problem(pattern)
        if problem is not None:
            raise InvalidPolicy(f"{label}: {problem}.", step=key)


def _check_keys(
    steps: list[StepSpec], district_id: str | None, path: str | None, entries: list[ChainEntry]
) -> None:
    seen: set[str] = set()
    for position, step in enumerate(steps, start=1):
        if step.key in seen:
            raise InvalidPolicy(
                f"{_label(position, step)}: the key is used twice in this policy.", step=step.key
            )
        seen.add(step.key)
    for entry in entries:
        if entry.district_id == district_id:
            continue
        above = entry.path is None or (path is not None and within(path, entry.path))
        for step in entry.steps:
            if step.key not in seen:
                continue
            position = next(i for i, s in enumerate(steps, start=1) if s.key == step.key)
            if above:
                raise StepRedefined(
                    f"{_label(position, step)} redefines an inherited step of "
                    f"{_owner(entry)}; a district adds steps to its parent's, it cannot change"
                    " or remove them. Choose another key.",
                    step=step.key,
                )
            raise StepRedefined(
                f"{_label(position, step)}: the key is already used by {_owner(entry)}, below"
                " this one; a chain cannot hold a key twice. Choose another key.",
                step=step.key,
            )


def _owner(entry: ChainEntry) -> str:
    return (
        "the company-wide policy"
        if entry.district_id is None
        else f"the policy of {entry.district_id!r}"
    )


def chain_at(entries: list[ChainEntry], path: str | None) -> list[ChainEntry]:
    """The entries that apply at `path`, top down (`entries` sorted by depth)."""
    return [e for e in entries if e.path is None or (path is not None and within(path, e.path))]


def _escalation_cycle(chain: list[ChainEntry]) -> list[str] | None:
    """A cycle of the graph (role, resolve_at) -> escalate_to over the chain's steps, as the
    list of its nodes (first repeated last), or None."""
    edges: dict[str, list[str]] = {}
    for entry in chain:
        for step in entry.steps:
            if step.escalate_to is not None:
                source = f"{step.role}@{step.resolve_at}"
                target = f"{step.escalate_to.role}@{step.escalate_to.resolve_at}"
                edges.setdefault(source, []).append(target)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in edges.get(node, []):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in list(edges):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def _check_cycles(entries: list[ChainEntry], paths: list[str | None]) -> None:
    for path in paths:
        cycle = _escalation_cycle(chain_at(entries, path))
        if cycle is not None:
            where = "company-wide" if path is None else f"for {path.rsplit('.', 1)[-1]!r}"
            raise EscalationCycle(
                f"The escalations of the chain {where} form a cycle: {' -> '.join(cycle)}.",
                cycle=cycle,
            )


# --- Routing ------------------------------------------------------------------------------


def _resolve(resolve_at: str, district_id: str, labels: list[str], entry: ChainEntry) -> str:
    if resolve_at == "subject":
        return district_id
    if resolve_at == "policy":
        return entry.district_id if entry.district_id is not None else labels[0]
    if resolve_at == "parent":
        return labels[-2] if len(labels) > 1 else labels[0]
    return labels[0]


def _policy_reason(entry: ChainEntry) -> str:
    owner = "company" if entry.district_id is None else entry.district_id
    return f"{owner} policy v{entry.version}"


async def plan_for(session: AsyncSession, district_id: str, facts: SubjectFacts) -> Plan:
    """The steps a subject of `district_id` needs, with why, from the live policies' current
    versions. No applicable step at all: the district's manager decides. An unknown district
    is a Problem (422)."""
    path = await tree.path_of(session, district_id)
    if path is None:
        raise UnknownDistrict(f"No district {district_id!r} in the replica.")
    labels = path.split(".")
    chain = await repository.live_policies(session, facts.subject_kind, path)
    conditions = [spec.when for entry in chain for spec in entry.steps if spec.when is not None]
    matches = iter(await matching.route(conditions, facts))
    steps: list[PlannedStep] = []
    for entry in chain:
        for spec in entry.steps:
            reasons = [_policy_reason(entry)]
            if spec.when is not None:
                matched = next(matches)
                if not matched:
                    continue
                reasons += matched
            where = _resolve(spec.resolve_at, district_id, labels, entry)
            if spec.quorum.mode == "all":
                count = max(1, await repository.roster_size(session, where, spec.role))
            elif spec.quorum.mode == "count":
                count = spec.quorum.count or 1
            else:
                count = 1
            escalation = spec.escalate_to
            steps.append(
                PlannedStep(
                    key=spec.key,
                    name=spec.name,
                    role=spec.role,
                    exact_role=spec.exact_role,
                    district_id=where,
                    quorum_mode=spec.quorum.mode,
                    quorum_count=count,
                    deadline_hours=spec.deadline_hours,
                    remind_before_hours=spec.remind_before_hours,
                    escalate_to_role=None if escalation is None else escalation.role,
                    escalate_to_district_id=None
                    if escalation is None
                    else _resolve(escalation.resolve_at, district_id, labels, entry),
                    reasons=reasons,
                    policy_id=entry.policy_id,
                    policy_district_id=entry.district_id,
                    outside_review=OutsideReviewMode.NONE
                    if spec.outside_review is None
                    else spec.outside_review.mode,
                )
            )
    if not steps:
        steps.append(
            PlannedStep(
                key=DEFAULT_STEP_KEY,
                name="District manager",
                role="district_manager",
                district_id=district_id,
                quorum_mode="any",
                quorum_count=1,
                deadline_hours=None,
                remind_before_hours=None,
                escalate_to_role=None,
                escalate_to_district_id=None,
                reasons=[DEFAULT_REASON],
                policy_id=None,
                policy_district_id=None,
            )
        )
    uses = [
        PolicyUse(policy_id=e.policy_id, district_id=e.district_id, version=e.version)
        for e in chain
    ]
    return Plan(steps=steps, policy_versions=uses)


# --- The service --------------------------------------------------------------------------


def _out(policy: Policy, version: PolicyVersion) -> dict[str, Any]:
    return {
        "id": policy.id,
        "district_id": policy.district_id,
        "subject_kind": policy.subject_kind,
        "current_version": policy.current_version,
        "steps": version.steps,
        "description": version.description,
        "retired_at": policy.retired_at,
        "created_by": policy.created_by,
        "created_at": policy.created_at,
        "updated_by": version.created_by,
        "updated_at": version.created_at,
    }


class PolicyService:
    async def put(
        self,
        session: AsyncSession,
        scope: Scope,
        subject_kind: SubjectKind,
        district_id: str | None,
        data: PolicyPut,
    ) -> tuple[PolicyDetail, bool]:
        """Create or replace the policy; True when it was created."""
        path = (
            None if district_id is None else await tree.district_path(session, scope, district_id)
        )
        require_manage(scope, path, "Writing an approval policy")
        if not data.steps:
            raise InvalidPolicy("A policy needs at least one step.")
        # Compiling managers' patterns is bounded but not free: off the event loop.
        await asyncio.to_thread(_check_steps, data.steps)

        await repository.lock_subject_kind(session, subject_kind)
        policy = await repository.get_by_district(session, district_id, subject_kind)
        entries = [
            e
            for e in await repository.live_policies(session, subject_kind, path, below=True)
            if e.district_id != district_id
        ]
        _check_keys(data.steps, district_id, path, entries)
        mine = ChainEntry(
            policy_id=policy.id if policy else uuid.uuid4(),
            district_id=district_id,
            path=path,
            version=policy.current_version + 1 if policy else 1,
            steps=data.steps,
        )
        entries.append(mine)
        entries.sort(key=lambda e: (e.depth, e.path or ""))
        below = [e.path for e in entries if e.district_id is not None and e is not mine]
        if path is not None:
            below = [p for p in below if p is not None and within(p, path)]
        _check_cycles(entries, [path, *below])

        created = policy is None
        if policy is None:
            policy = Policy(
                id=mine.policy_id,
                district_id=district_id,
                subject_kind=subject_kind,
                current_version=1,
                created_by=scope.principal.sub,
            )
            session.add(policy)
            await session.flush()
        else:
            policy.current_version = mine.version
            policy.retired_at = None
        session.add(
            PolicyVersion(
                policy_id=policy.id,
                version=mine.version,
                steps=[step.model_dump(mode="json") for step in data.steps],
                description=data.description,
                created_by=scope.principal.sub,
            )
        )
        await session.flush()
        return await self.get(session, scope, policy.id), created

    async def get(self, session: AsyncSession, scope: Scope, policy_id: uuid.UUID) -> PolicyDetail:
        policy, _ = await tree.load_scoped(session, scope, Policy, policy_id, PolicyNotFound)
        versions = await repository.versions_of(session, policy.id)
        await session.refresh(policy)
        current = next(v for v in versions if v.version == policy.current_version)
        return PolicyDetail.model_validate(
            {
                **_out(policy, current),
                "versions": [PolicyVersionInfo.model_validate(v) for v in versions],
            }
        )

    async def get_version(
        self, session: AsyncSession, scope: Scope, policy_id: uuid.UUID, version: int
    ) -> PolicyVersionOut:
        policy, _ = await tree.load_scoped(session, scope, Policy, policy_id, PolicyNotFound)
        found = await repository.get_version(session, policy.id, version)
        if found is None:
            raise PolicyVersionNotFound(f"Policy {policy_id} has no version {version}.")
        return PolicyVersionOut.model_validate(found)

    async def list_policies(
        self,
        session: AsyncSession,
        scope: Scope,
        page: PageRequest,
        *,
        district_id: str | None,
        subject_kind: SubjectKind | None,
        include_retired: bool,
    ) -> Page[PolicyOut]:
        """The policies the caller reaches, oldest first; none for a district they do not
        reach."""
        if district_id is not None:
            path = await tree.path_of(session, district_id)
            if path is None or not reaches(scope, path):
                return Page[PolicyOut](items=[])
        rows = await repository.list_policies(
            session,
            tree.reaching(Policy.district_id, scope),
            district_id=district_id,
            subject_kind=subject_kind,
            include_retired=include_retired,
            page=page,
        )
        return keyset_page(
            rows,
            page,
            key=lambda row: (row[0].created_at, row[0].id),
            item=lambda row: PolicyOut.model_validate(_out(*row)),
        )

    async def retire(self, session: AsyncSession, scope: Scope, policy_id: uuid.UUID) -> None:
        policy, path = await tree.load_scoped(
            session, scope, Policy, policy_id, PolicyNotFound, for_update=True
        )
        require_manage(scope, path, "Retiring an approval policy")
        if policy.retired_at is None:
            policy.retired_at = datetime.now(UTC)
            await session.flush()

    async def effective(
        self, session: AsyncSession, scope: Scope, district_id: str, subject_kind: SubjectKind
    ) -> EffectivePolicy:
        path = await tree.district_path(session, scope, district_id)
        chain = await repository.live_policies(session, subject_kind, path)
        return EffectivePolicy(
            district_id=district_id,
            subject_kind=subject_kind,
            steps=[
                EffectiveStep(
                    **step.model_dump(),
                    policy_id=entry.policy_id,
                    policy_district_id=entry.district_id,
                    policy_version=entry.version,
                )
                for entry in chain
                for step in entry.steps
            ],
            policies=[
                PolicyUse(policy_id=e.policy_id, district_id=e.district_id, version=e.version)
                for e in chain
            ],
        )

    async def dry_run(
        self, session: AsyncSession, scope: Scope, district_id: str, facts: SubjectFacts
    ) -> Plan:
        await tree.district_path(session, scope, district_id)
        return await plan_for(session, district_id, facts)


class RosterService:
    """Who holds an approver role on a district: what a quorum of "all" counts.

    A roster is kept by a manager of its district, unless a policy defined above the district
    relies on it (a step of that role with quorum "all" that can resolve there): then it is
    kept by a manager at that policy's level (the central team for a company-wide policy), as
    the policy itself is. Otherwise a child's manager could shrink the roster and so lower
    the quorum their parent asked of them. The steps' conditions are not looked at: a step
    that may apply is relied on."""

    async def get(
        self, session: AsyncSession, scope: Scope, district_id: str, role: str
    ) -> RosterOut:
        await tree.district_path(session, scope, district_id)
        _check_roster_role(role)
        return RosterOut(
            district_id=district_id,
            role=role,
            people=await repository.roster(session, district_id, role),
        )

    async def put(
        self, session: AsyncSession, scope: Scope, district_id: str, role: str, people: list[str]
    ) -> RosterOut:
        path = await tree.district_path(session, scope, district_id)
        require_manage(scope, path, "Keeping the approver roster")
        _check_roster_role(role)
        for entry in await _relying_above(session, path, role):
            where = entry.path
            if not (is_central(scope) if where is None else scope.can_manage(where)):
                raise RosterHeldAbove(
                    f"{_owner(entry).capitalize()} (v{entry.version}) counts every {role} of "
                    f"{district_id!r} for a step with quorum 'all': this roster is kept by "
                    + (
                        "the central team."
                        if where is None
                        else f"a manager of {entry.district_id!r} or above it."
                    ),
                    policy_id=str(entry.policy_id),
                    policy_district_id=entry.district_id,
                )
        await repository.replace_roster(session, district_id, role, list(dict.fromkeys(people)))
        await session.flush()
        return await self.get(session, scope, district_id, role)


async def _relying_above(session: AsyncSession, path: str, role: str) -> list[ChainEntry]:
    """The live policies, defined above the district at `path` (or company-wide), with a step
    of `role` and quorum "all" that can resolve at that district, for any subject kind."""
    top_level = "." not in path
    found: list[ChainEntry] = []
    for kind in SubjectKind:
        for entry in await repository.live_policies(session, kind, path):
            if entry.path is not None and (entry.path == path or not within(path, entry.path)):
                continue  # its own policy (or one not above it): its own managers keep both
            for spec in entry.steps:
                if spec.role != role or spec.quorum.mode != "all":
                    continue
                # From above, "subject" and "parent" land on the district for subjects in it
                # or below it; "policy" and "root" only on the top district, company-wide.
                if spec.resolve_at in ("subject", "parent") or (entry.path is None and top_level):
                    found.append(entry)
                    break
    return found


def _check_roster_role(role: str) -> None:
    if role not in APPROVER_ROLES:
        raise UnknownRole(
            f"Unknown role {role!r}; the approver roles are {', '.join(APPROVER_ROLES)}."
        )


policies = PolicyService()
rosters = RosterService()
