"""HTTP endpoints of approval policies, their dry run, and the approver roster.

Policies are read by whoever reaches their district (it, above it or below it: a district
sees what it inherits); written and retired by a manager of the district, company-wide ones by
the central team. The roster is read by the district's readers and kept by its managers, or
by managers at the level of a policy above that relies on it.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from chassis.database import SessionDep
from chassis.districts import DistrictNotFound, ScopeDep
from chassis.errors import Forbidden, problem_responses
from chassis.pagination import InvalidCursor, Page, PageDep
from chassis.principal import DISTRICT_ID_PATTERN
from services.approvals.policies.schemas import (
    DryRun,
    EffectivePolicy,
    Plan,
    PolicyDetail,
    PolicyOut,
    PolicyPut,
    PolicyVersionOut,
    RosterOut,
    RosterPut,
)
from services.approvals.policies.service import (
    EscalationCycle,
    InvalidPolicy,
    PolicyNotFound,
    PolicyVersionNotFound,
    RosterHeldAbove,
    StepRedefined,
    UnknownDistrict,
    UnknownRole,
    policies,
    rosters,
)
from services.approvals.vocabulary import SubjectKind

router = APIRouter(tags=["policies"])

DistrictQuery = Annotated[
    str | None,
    Query(pattern=DISTRICT_ID_PATTERN, description="The district; left out: company-wide"),
]
DistrictPath = Annotated[str, Path(pattern=DISTRICT_ID_PATTERN)]
RolePath = Annotated[str, Path(max_length=64, description="An approver role")]


@router.get(
    "/policies",
    responses=problem_responses(InvalidCursor),
)
async def list_policies(
    session: SessionDep,
    scope: ScopeDep,
    page: PageDep,
    district_id: Annotated[
        str | None,
        Query(pattern=DISTRICT_ID_PATTERN, description="Only the policies of this district"),
    ] = None,
    subject_kind: SubjectKind | None = None,
    include_retired: bool = False,
) -> Page[PolicyOut]:
    """The policies the caller may see (company-wide ones, those of the districts they read
    and of the districts above and below them), oldest first, each with its current steps."""
    return await policies.list_policies(
        session,
        scope,
        page,
        district_id=district_id,
        subject_kind=subject_kind,
        include_retired=include_retired,
    )


@router.get(
    "/policies/effective",
    responses=problem_responses(DistrictNotFound),
)
async def effective_policy(
    session: SessionDep,
    scope: ScopeDep,
    district_id: Annotated[str, Query(pattern=DISTRICT_ID_PATTERN)],
    subject_kind: SubjectKind,
) -> EffectivePolicy:
    """The merged chain that applies to a district: the company-wide policy's steps, then
    each ancestor's from the top, then the district's own, each with the policy, district
    and version it comes from. Conditional steps are listed with their `when`; the dry run
    says which would apply to a given subject. Needs a role on the district or above it."""
    return await policies.effective(session, scope, district_id, subject_kind)


@router.post(
    "/policies/dry-run",
    responses=problem_responses(DistrictNotFound, UnknownDistrict),
)
async def dry_run(data: DryRun, session: SessionDep, scope: ScopeDep) -> Plan:
    """Which steps would this subject need, and why: the plan a request for it would be
    opened with now, from the live policies' current versions. Steps of a quorum `all` count
    the approver roster. Nothing is stored. Needs a role on the district or above it."""
    return await policies.dry_run(session, scope, data.district_id, data.facts())


@router.put(
    "/policies/{subject_kind}",
    responses={
        201: {"model": PolicyDetail, "description": "Created"},
        **problem_responses(
            DistrictNotFound, Forbidden, InvalidPolicy, StepRedefined, EscalationCycle
        ),
    },
)
async def put_policy(
    subject_kind: SubjectKind,
    data: PolicyPut,
    session: SessionDep,
    scope: ScopeDep,
    response: Response,
    district_id: DistrictQuery = None,
) -> PolicyDetail:
    """Create (201) or replace (200) the policy of a district, or the company-wide one when
    `district_id` is left out, for one kind of subject. Every call writes a new version;
    requests already open keep theirs. The steps are added after those of the policies
    above; a step key used anywhere in the chain above or in a policy below is refused, and
    so are unknown roles, inconsistent quorums, deadlines and reminders, invalid patterns and
    escalations that form a cycle (422, naming the step or the cycle). Putting a retired
    policy brings it back. Needs a manager on the district; company-wide, the central team."""
    policy, created = await policies.put(session, scope, subject_kind, district_id, data)
    if created:
        response.status_code = status.HTTP_201_CREATED
    return policy


@router.get(
    "/policies/{policy_id}",
    responses=problem_responses(PolicyNotFound),
)
async def get_policy(policy_id: uuid.UUID, session: SessionDep, scope: ScopeDep) -> PolicyDetail:
    """A policy with its current version and the list of all its versions. 404 unless the
    caller reaches its district."""
    return await policies.get(session, scope, policy_id)


@router.get(
    "/policies/{policy_id}/versions/{version}",
    responses=problem_responses(PolicyNotFound, PolicyVersionNotFound),
)
async def get_policy_version(
    policy_id: uuid.UUID,
    # A version is a PostgreSQL integer; a larger one cannot exist (and would not bind).
    version: Annotated[int, Path(ge=1, le=2_147_483_647)],
    session: SessionDep,
    scope: ScopeDep,
) -> PolicyVersionOut:
    """One version of a policy, as it was written (requests keep the version they started
    with)."""
    return await policies.get_version(session, scope, policy_id, version)


@router.delete(
    "/policies/{policy_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(PolicyNotFound, Forbidden),
)
async def retire_policy(policy_id: uuid.UUID, session: SessionDep, scope: ScopeDep) -> None:
    """Retire a policy: it adds no steps to new plans any more; its versions stay, and open
    requests keep their plan. Retiring twice changes nothing. Needs a manager on its
    district; company-wide, the central team."""
    await policies.retire(session, scope, policy_id)


@router.put(
    "/rosters/{district_id}/{role}",
    responses=problem_responses(DistrictNotFound, Forbidden, RosterHeldAbove, UnknownRole),
)
async def put_roster(
    district_id: DistrictPath,
    role: RolePath,
    data: RosterPut,
    session: SessionDep,
    scope: ScopeDep,
) -> RosterOut:
    """Replace who holds an approver role on a district: a step of quorum `all` resolved
    there needs every one of them (requests already open keep their count). Needs a manager
    on the district or above it; when a policy defined above the district (or company-wide)
    has a step of this role with quorum `all` that can resolve there, a manager at that
    policy's level (the central team for a company-wide one), as for the policy itself."""
    return await rosters.put(session, scope, district_id, role, data.people)


@router.get(
    "/rosters/{district_id}/{role}",
    responses=problem_responses(DistrictNotFound, UnknownRole),
)
async def get_roster(
    district_id: DistrictPath, role: RolePath, session: SessionDep, scope: ScopeDep
) -> RosterOut:
    """Who holds an approver role on a district, by the roster. Needs a role on the district
    or above it."""
    return await rosters.get(session, scope, district_id, role)
