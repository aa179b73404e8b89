"""HTTP endpoints of the style guide and its lint. Reading a rule needs any role on a district
it applies to; creating, changing and deleting one needs a manager on its district (the
central team for company-wide rules). Another district's rule is 404."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, status

from chassis.database import SessionDep
from chassis.districts import DistrictNotFound, ScopeDep
from chassis.errors import Forbidden, problem_responses
from chassis.pagination import InvalidCursor, Page, PageDep
from services.calendar.schemas import district_query
from services.calendar.styleguide.schemas import (
    LintReport,
    LintRequest,
    StyleRuleCreate,
    StyleRuleOut,
    StyleRuleUpdate,
)
from services.calendar.styleguide.service import (
    InvalidRuleParams,
    StyleRuleExists,
    StyleRuleNotFound,
    UnknownAccounts,
    style_guide,
)
from services.calendar.vocabulary import RuleKind

router = APIRouter(tags=["styleguide"])


@router.post(
    "/style-rules",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(DistrictNotFound, Forbidden, StyleRuleExists),
)
async def create_style_rule(
    data: StyleRuleCreate, session: SessionDep, scope: ScopeDep
) -> StyleRuleOut:
    """Add a rule to the style guide of a district (it applies there and below), or to the
    company-wide guide when `district_id` is null. `params` depend on `kind`:

    - `banned_term`: `{terms: [..1-200], case_sensitive: false, whole_word: true}`
    - `required_disclosure`: `{keywords: [..], disclosures: [..]}`: a text mentioning a
      keyword must carry one of the disclosures (e.g. "#ad", "Sponsored")
    - `hashtag_limit`: `{max}`; `length_limit`: `{max}` (the link counts as on the platform)
    - `link_domains`: `{allowed: [domain, ..]}` (subdomains allowed too)
    - `alt_text_required`: `{}`: every image used needs alt text
    - `min_spacing`: `{minutes}`: warns when another post goes out on the same account closer
      than that

    `platform` limits the rule to one platform. Severity defaults to warning for
    `min_spacing`, error otherwise; errors refuse submission. Needs a manager role on the
    district; company-wide rules need the central team. The same rule twice (same district,
    kind, platform and params) is 409 `style-rule-exists`, naming the rule already there in
    `existing_rule_id`."""
    return await style_guide.create(session, scope, data)


@router.get(
    "/style-rules",
    responses=problem_responses(InvalidCursor, DistrictNotFound),
)
async def list_style_rules(
    session: SessionDep,
    scope: ScopeDep,
    page: PageDep,
    district_id: Annotated[
        str | None,
        district_query(
            "The guide in force for this district: company-wide rules, its"
            " ancestors' and its own; company-wide rules only when left out",
        ),
    ] = None,
    kind: RuleKind | None = None,
) -> Page[StyleRuleOut]:
    """The rules of a district's style guide, disabled ones included, oldest first."""
    return await style_guide.list_applying(session, scope, page, district_id=district_id, kind=kind)


@router.get(
    "/style-rules/{rule_id}",
    responses=problem_responses(StyleRuleNotFound),
)
async def get_style_rule(rule_id: uuid.UUID, session: SessionDep, scope: ScopeDep) -> StyleRuleOut:
    """One rule; 404 unless it applies to a district the caller reads."""
    return await style_guide.get(session, scope, rule_id)


@router.patch(
    "/style-rules/{rule_id}",
    responses=problem_responses(StyleRuleNotFound, Forbidden, InvalidRuleParams, StyleRuleExists),
)
async def update_style_rule(
    rule_id: uuid.UUID, data: StyleRuleUpdate, session: SessionDep, scope: ScopeDep
) -> StyleRuleOut:
    """Change a rule's severity, params (replaced as a whole, checked against its kind),
    description, platform or whether it is enabled. Its kind and district stay. A change that
    makes it the same as another rule is 409 `style-rule-exists`."""
    return await style_guide.update(session, scope, rule_id, data)


@router.delete(
    "/style-rules/{rule_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(StyleRuleNotFound, Forbidden),
)
async def delete_style_rule(rule_id: uuid.UUID, session: SessionDep, scope: ScopeDep) -> None:
    """Remove a rule from the style guide (disabling it keeps it for later instead)."""
    await style_guide.delete(session, scope, rule_id)


@router.post(
    "/lint",
    responses=problem_responses(DistrictNotFound, Forbidden, UnknownAccounts),
)
async def lint(data: LintRequest, session: SessionDep, scope: ScopeDep) -> LintReport:
    """Check content against the style guide in force for `district_id` (null: the
    company-wide calendar), the platforms' own length limits, blackouts (when `publish_at` is
    given) and crowding on the accounts. Each violation names its rule (null for the built-in
    `platform_limit` and `blackout`), severity and position: the field and, in a text, the
    character span [start, end). Errors refuse submission; warnings do not. The accounts must
    be ones the post could target."""
    return await style_guide.lint_request(session, scope, data)
