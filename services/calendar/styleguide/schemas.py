"""Models of the style guide: rules, lint requests and their violations.

A rule's ``params`` depend on its ``kind``; each kind has its own model below
(``PARAMS_MODELS``), so a rule is created through a union discriminated by ``kind`` and a bad
parameter is a 422 naming the field.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from chassis.instants import in_range
from services.calendar.calendars.schemas import DistrictId
from services.calendar.posts.schemas import MAX_TARGETS, PlatformKey, PostContent
from services.calendar.schemas import refuse_null

# Re-exported: lint and the posts name them from here too (see ``violations``).
from services.calendar.styleguide.violations import Position as Position
from services.calendar.styleguide.violations import Violation as Violation
from services.calendar.vocabulary import RuleKind, Severity


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


Phrase = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_not_blank)]


def _domain(value: str) -> str:
    domain = value.strip().lower().removeprefix("*.").removeprefix(".")
    labels = domain.split(".")
    if len(labels) < 2 or not all(
        0 < len(label) <= 63 and label.replace("-", "").isalnum() for label in labels
    ):
        raise ValueError(f"{value!r} is not a domain name such as example.com")
    return domain


Domain = Annotated[str, Field(min_length=3, max_length=253), AfterValidator(_domain)]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BannedTermParams(_Params):
    terms: list[Phrase] = Field(min_length=1, max_length=200)
    case_sensitive: bool = False
    whole_word: bool = Field(default=True, description="Match the term only as a whole word")


class RequiredDisclosureParams(_Params):
    """If one of the keywords appears (as a word, in any case), one of the disclosures must
    appear in the same text (as a word, in any case: "#ad" does not match "#adventure")."""

    keywords: list[Phrase] = Field(min_length=1, max_length=200)
    disclosures: list[Phrase] = Field(min_length=1, max_length=50)


class HashtagLimitParams(_Params):
    max: int = Field(ge=0, le=1000)


class LengthLimitParams(_Params):
    max: int = Field(ge=1, le=100_000)


class LinkDomainsParams(_Params):
    allowed: list[Domain] = Field(
        min_length=1, max_length=200, description="Domains; their subdomains are allowed too"
    )


class AltTextRequiredParams(_Params):
    pass


class MinSpacingParams(_Params):
    minutes: int = Field(ge=1, le=10_080, description="Minimum gap between posts on an account")


PARAMS_MODELS: dict[str, type[_Params]] = {
    "banned_term": BannedTermParams,
    "required_disclosure": RequiredDisclosureParams,
    "hashtag_limit": HashtagLimitParams,
    "length_limit": LengthLimitParams,
    "link_domains": LinkDomainsParams,
    "alt_text_required": AltTextRequiredParams,
    "min_spacing": MinSpacingParams,
}


class _RuleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    district_id: DistrictId | None = Field(
        default=None, description="The district it applies to (and below); null: company-wide"
    )
    severity: Severity | None = Field(
        default=None,
        description="error refuses submission, warning only tells; default warning for"
        " min_spacing, error otherwise",
    )
    platform: PlatformKey | None = Field(default=None, description="null: every platform")
    description: str | None = Field(default=None, max_length=2000)
    enabled: bool = True


class BannedTermRule(_RuleCreate):
    kind: Literal[RuleKind.BANNED_TERM]
    params: BannedTermParams


class RequiredDisclosureRule(_RuleCreate):
    kind: Literal[RuleKind.REQUIRED_DISCLOSURE]
    params: RequiredDisclosureParams


class HashtagLimitRule(_RuleCreate):
    kind: Literal[RuleKind.HASHTAG_LIMIT]
    params: HashtagLimitParams


class LengthLimitRule(_RuleCreate):
    kind: Literal[RuleKind.LENGTH_LIMIT]
    params: LengthLimitParams


class LinkDomainsRule(_RuleCreate):
    kind: Literal[RuleKind.LINK_DOMAINS]
    params: LinkDomainsParams


class AltTextRequiredRule(_RuleCreate):
    kind: Literal[RuleKind.ALT_TEXT_REQUIRED]
    params: AltTextRequiredParams = Field(default_factory=AltTextRequiredParams)


class MinSpacingRule(_RuleCreate):
    kind: Literal[RuleKind.MIN_SPACING]
    params: MinSpacingParams


StyleRuleCreate = Annotated[
    BannedTermRule
    | RequiredDisclosureRule
    | HashtagLimitRule
    | LengthLimitRule
    | LinkDomainsRule
    | AltTextRequiredRule
    | MinSpacingRule,
    Field(discriminator="kind"),
]


class StyleRuleUpdate(BaseModel):
    """A partial edit: fields left out keep their value. ``params`` replaces the parameters
    as a whole and is checked against the rule's kind; ``platform`` null means every platform,
    ``description`` null clears it."""

    model_config = ConfigDict(extra="forbid")

    severity: Severity | None = None
    params: dict[str, Any] | None = None
    description: str | None = Field(default=None, max_length=2000)
    enabled: bool | None = None
    platform: PlatformKey | None = None

    # A null here would make the rule meaningless.
    _not_null = refuse_null("severity", "params", "enabled", message="may be left out but not null")


class StyleRuleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    district_id: str | None
    kind: RuleKind
    severity: Severity
    platform: str | None
    params: dict[str, Any]
    description: str | None
    enabled: bool
    created_by: str
    created_at: datetime
    updated_at: datetime


class LintSubject(BaseModel):
    """What lint checks: the content, and where and when it goes out."""

    model_config = ConfigDict(extra="forbid")

    content: PostContent
    platforms: list[str] = Field(default_factory=list, description="Platforms of the targets")
    account_ids: list[uuid.UUID] = Field(default_factory=list)
    publish_at: datetime | None = None
    post_id: uuid.UUID | None = Field(default=None, description="The post itself (not crowding)")


class LintSubjectIn(LintSubject):
    """LintSubject as a client sends it: bounded lists, platform keys, an aware time."""

    platforms: list[PlatformKey] = Field(
        default_factory=list, max_length=MAX_TARGETS, description="Platforms of the targets"
    )
    account_ids: list[uuid.UUID] = Field(default_factory=list, max_length=MAX_TARGETS)

    @field_validator("publish_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.utcoffset() is None:
            raise ValueError("give the time with its UTC offset, e.g. 2027-01-10T09:00:00+01:00")
        return None if value is None else in_range(value)


class LintRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    district_id: DistrictId | None = Field(
        default=None, description="The post's district; null: the company-wide calendar"
    )
    subject: LintSubjectIn


class LintReport(BaseModel):
    violations: list[Violation]
    errors: int
    warnings: int

    @classmethod
    def of(cls, violations: list[Violation]) -> LintReport:
        errors = sum(1 for v in violations if v.severity == "error")
        return cls(violations=violations, errors=errors, warnings=len(violations) - errors)
