"""The lint engine: pure checks of a post's content against style rules, the platforms' own
length limits, expiring asset rights, crowding and blackouts. It reads nothing: the style
guide's service (``service.StyleGuide.lint``) reads the rules and facts from the database and
hands them here, so every check can be read (and tested) as plain functions.

Decisions worth knowing (see also the service's docstring):

- Positions are offsets in Unicode code points into the text named by ``field``, start
  inclusive and end exclusive. Each problem is reported once per rule, field and span
  (``Findings``): a problem in the master text shared by several platforms comes once, with
  ``platform`` null. And the same finding is never reported twice, even when several rules
  find it (``Findings.report``). Length problems name the platform they were counted for, and each
  platform's built-in limit is a rule of its own.
- Length counts code points. The link, when not already in the text, is counted as the
  scheduler appends it: after a space, at its length, except on X, where t.co makes every
  URL (in the text too) count 23.
- Each rule reports at most ``MAX_FINDINGS_PER_RULE`` findings per field.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel

from services.calendar.posts.schemas import MediaRef
from services.calendar.styleguide.schemas import (
    PARAMS_MODELS,
    BannedTermParams,
    HashtagLimitParams,
    LengthLimitParams,
    LinkDomainsParams,
    LintReport,
    LintSubject,
    MinSpacingParams,
    Position,
    RequiredDisclosureParams,
    Violation,
)
from services.calendar.vocabulary import Severity

if TYPE_CHECKING:
    from services.calendar.models import Blackout, StyleRule
    from services.calendar.styleguide.repository import Neighbour, RightsEnd

# The platforms' own caption limits, in characters, as published in their help pages
# (X for non-Premium accounts, Facebook for page posts). They always apply, as errors; a
# `length_limit` rule can only ask for less.
PLATFORM_LIMITS: dict[str, int] = {
    "x": 280,
    "bluesky": 300,
    "threads": 500,
    "mastodon": 500,
    "instagram": 2200,
    "tiktok": 2200,
    "linkedin": 3000,
    "youtube": 5000,
    "facebook": 63206,
}
# X wraps every URL in a t.co link, which counts 23 characters whatever the URL's length.
URL_WEIGHT: dict[str, int] = {"x": 23}
MAX_FINDINGS_PER_RULE = 50
# Kinds whose findings depend on the platform even when the rule names none.
PER_PLATFORM_KINDS = frozenset({"length_limit", "platform_limit"})
RIGHTS_EXPIRED = "asset_rights_expired"
# Built-in findings lint only warns about that refuse a submission.
SUBMIT_ERRORS = frozenset({RIGHTS_EXPIRED})

T = TypeVar("T")
ParamsT = TypeVar("ParamsT", bound=BaseModel)

_URL = re.compile(r"(?:\bhttps?://|\bwww\.)[^\s<>\"'`]+", re.IGNORECASE)
_URL_TAIL = ".,;:!?'\""
# A hashtag has at least one letter (#2027 is not one) and does not continue a word or URL.
_HASHTAG = re.compile(r"(?<![\w#&/])#(?=\w*[^\W\d_])\w+")


class Findings:
    """The violations found so far, one per rule, field, span and key."""

    def __init__(self) -> None:
        self._found: dict[tuple[Any, ...], Violation] = {}

    def add(self, rule: Rule | None, kind: str, context: Context | None, found: Found) -> None:
        platform = _platform_of(rule, kind, context, found.position.field)
        # One report per rule, field and span; each platform's built-in limit is a rule.
        key = (
            rule.id if rule else (kind, platform if kind == "platform_limit" else None),
            found.position.field,
            found.position.start,
            found.position.end,
            found.key,
        )
        self._found.setdefault(
            key,
            Violation(
                rule_id=rule.id if rule else None,
                kind=kind,
                severity=rule.severity if rule else found.severity,
                message=found.message,
                platform=platform,
                position=found.position,
                asset_id=found.asset_id,
            ),
        )

    def report(self) -> LintReport:
        """Every finding once, however many rules found it: two rules that say the same
        thing at the same place (a district repeating a company rule, or two banned-term
        lists sharing a term) give one violation, the more severe one's (the first rule's
        on a tie), so an error still refuses the submission."""
        distinct: dict[tuple[Any, ...], Violation] = {}
        for violation in self._found.values():
            same = (
                violation.kind,
                violation.platform,
                violation.position.field,
                violation.position.start,
                violation.position.end,
                violation.message,
                violation.asset_id,
            )
            kept = distinct.get(same)
            if kept is None or (
                kept.severity != Severity.ERROR and violation.severity == Severity.ERROR
            ):
                distinct[same] = violation
        violations = sorted(
            distinct.values(),
            key=lambda v: (
                v.position.field,
                -1 if v.position.start is None else v.position.start,
                -1 if v.position.end is None else v.position.end,
                v.kind,
                v.message,
            ),
        )
        return LintReport.of(violations)


def needs_images(rules: Sequence[Rule]) -> bool:
    """Whether a rule asks about the images' alt text (read only then)."""
    return any(rule.kind == "alt_text_required" for rule in rules)


def check_content(
    findings: Findings,
    rules: Sequence[Rule],
    contexts: Sequence[Context],
    images: dict[uuid.UUID, str | None],
) -> None:
    """The platforms' limits and every rule but crowding, on each platform's content."""
    checked: set[tuple[Any, ...]] = set()
    for context in contexts:
        if context.platform in PLATFORM_LIMITS:
            for found in _length(context, PLATFORM_LIMITS[context.platform], "built-in"):
                findings.add(None, "platform_limit", context, found)
        for rule in rules:
            if rule.kind == "min_spacing" or not rule.covers(context.platform):
                continue
            if rule.kind not in PER_PLATFORM_KINDS:
                # Same fields, same content, same findings: the master is checked once
                # however many platforms share it.
                seen = (rule.id, context.text_field, context.link_field, context.media_field)
                if seen in checked:
                    continue
                checked.add(seen)
            for found in _check(rule, context, images):
                findings.add(rule, rule.kind, context, found)


def media_ids(contexts: Sequence[Context]) -> list[uuid.UUID]:
    return [m.asset_id for c in contexts for m in c.media]


def check_rights(
    findings: Findings,
    contexts: Sequence[Context],
    ending: dict[uuid.UUID, RightsEnd],
    publish_at: datetime | None,
) -> None:
    """A warning on each media entry whose asset's usage rights end before the publish time
    (`ending`: those assets, by id)."""
    if not ending:
        return
    for context in contexts:
        for index, media in enumerate(context.media):
            end = ending.get(media.asset_id)
            if end is None:
                continue
            when = "the publish time" if publish_at is not None else "now"
            message = (
                f"The usage rights of asset “{end.title}” end at"
                f" {_when(end.rights_expire_at)}, before {when}; renew them or use"
                " another asset."
            )
            position = Position(field=f"{context.media_field}[{index}]")
            found = Found(
                position, message, end.asset_id, severity=Severity.WARNING, asset_id=end.asset_id
            )
            findings.add(None, RIGHTS_EXPIRED, context, found)


def spacing_rules(rules: Sequence[Rule], subject: LintSubject) -> list[Rule]:
    """The crowding rules that apply to the subject's platforms."""
    platforms = set(subject.platforms)
    return [
        rule
        for rule in rules
        if rule.kind == "min_spacing" and (rule.platform is None or rule.platform in platforms)
    ]


def widest_spacing(spacing: Sequence[Rule]) -> timedelta:
    """How far around the publish time the other posts are to be read."""
    return timedelta(minutes=max(_params(rule, MinSpacingParams).minutes for rule in spacing))


def check_spacing(
    findings: Findings, spacing: Sequence[Rule], near: Sequence[Neighbour], at: datetime
) -> None:
    """Crowding: per rule and account, the nearest other post strictly closer than the rule's
    minutes."""
    for rule in spacing:
        gap_minutes = _params(rule, MinSpacingParams).minutes
        gap = timedelta(minutes=gap_minutes)
        nearest: dict[uuid.UUID, Neighbour] = {}
        for other in near:
            if rule.platform is not None and other.platform != rule.platform:
                continue
            if abs(other.publish_at - at) >= gap:
                continue
            best = nearest.get(other.account_id)
            if best is None or abs(other.publish_at - at) < abs(best.publish_at - at):
                nearest[other.account_id] = other
        for account_id, other in nearest.items():
            minutes = int(abs(other.publish_at - at).total_seconds() // 60)
            who = f"{other.platform} @{other.handle}" if other.handle else other.platform
            message = (
                f"Another post goes out on {who} at {_when(other.publish_at)},"
                f" {minutes} minutes from this one; keep at least {gap_minutes} minutes"
                " between posts on an account."
            )
            findings.add(
                rule, rule.kind, None, Found(Position(field="publish_at"), message, account_id)
            )


def check_blackouts(findings: Findings, blackouts: Sequence[Blackout]) -> None:
    """An error for each blackout the publish time falls in."""
    for blackout in blackouts:
        message = (
            f"Publishing is blacked out from {_when(blackout.starts_at)} to"
            f" {_when(blackout.ends_at)}: {blackout.reason}"
        )
        findings.add(
            None, "blackout", None, Found(Position(field="publish_at"), message, blackout.id)
        )


@dataclass(frozen=True)
class Rule:
    id: uuid.UUID
    kind: str
    severity: Any
    platform: str | None
    params: BaseModel

    @classmethod
    def of(cls, row: StyleRule) -> Rule:
        # Stored params were checked on the way in; validating again normalises defaults.
        params = PARAMS_MODELS[row.kind].model_validate(row.params)
        return cls(row.id, row.kind, row.severity, row.platform, params)

    def covers(self, platform: str | None) -> bool:
        # With no platform (the master alone), only rules for every platform apply.
        return self.platform is None or self.platform == platform


@dataclass(frozen=True)
class Context:
    """The content as it goes out on one platform (None: the master, no platform), and the
    field each part came from."""

    platform: str | None
    text: str
    text_field: str
    link: str | None
    link_field: str
    media: list[MediaRef]
    media_field: str


@dataclass(frozen=True)
class Found:
    position: Position
    message: str
    # Tells apart findings at the same position (the blackout, the crowded account).
    key: Any = None
    # Of a built-in finding (rules carry their own severity).
    severity: Severity = Severity.ERROR
    asset_id: uuid.UUID | None = None


def contexts_of(subject: LintSubject) -> Iterator[Context]:
    content = subject.content
    platforms = list(dict.fromkeys(subject.platforms))
    if not platforms:
        yield Context(None, content.text, "text", content.link, "link", content.media, "media")
        return
    for platform in platforms:
        resolved = content.resolved(platform)
        variant = content.variant_for(platform)
        own = f"variants.{platform}."
        yield Context(
            platform=platform,
            text=resolved.text,
            text_field=own + "text" if variant and variant.text is not None else "text",
            link=resolved.link,
            link_field=own + "link" if variant and variant.link is not None else "link",
            media=resolved.media,
            media_field=own + "media" if variant and variant.media is not None else "media",
        )


def strict(report: LintReport) -> LintReport:
    """The report as submission judges it: the ``SUBMIT_ERRORS`` warnings become errors."""
    return LintReport.of(
        [
            v.model_copy(update={"severity": Severity.ERROR}) if v.kind in SUBMIT_ERRORS else v
            for v in report.violations
        ]
    )


def _platform_of(rule: Rule | None, kind: str, context: Context | None, field: str) -> str | None:
    if rule is not None and rule.platform is not None:
        return rule.platform
    if context is None:
        return None
    if kind in PER_PLATFORM_KINDS or field.startswith("variants."):
        return context.platform
    # A master problem is the same on every platform: reported once, for none in particular.
    return None


def _params(rule: Rule, model: type[ParamsT]) -> ParamsT:
    assert isinstance(rule.params, model)
    return rule.params


def _check(rule: Rule, context: Context, images: dict[uuid.UUID, str | None]) -> list[Found]:
    match rule.kind:
        case "banned_term":
            return _banned(_params(rule, BannedTermParams), context)
        case "required_disclosure":
            return _disclosure(_params(rule, RequiredDisclosureParams), context)
        case "hashtag_limit":
            return _hashtags(_params(rule, HashtagLimitParams), context)
        case "length_limit":
            return _length(context, _params(rule, LengthLimitParams).max, "style guide")
        case "link_domains":
            return _links(_params(rule, LinkDomainsParams), context)
        case "alt_text_required":
            return _alt_text(context, images)
    return []


def _phrases(phrases: Sequence[str], *, case_sensitive: bool, whole_word: bool) -> re.Pattern[str]:
    # Longest first, so "free gift" wins over "free" at the same place.
    alternatives = "|".join(re.escape(p) for p in sorted(set(phrases), key=len, reverse=True))
    pattern = f"(?<!\\w)(?:{alternatives})(?!\\w)" if whole_word else f"(?:{alternatives})"
    return re.compile(pattern, 0 if case_sensitive else re.IGNORECASE)


def _banned(params: BannedTermParams, context: Context) -> list[Found]:
    pattern = _phrases(
        params.terms, case_sensitive=params.case_sensitive, whole_word=params.whole_word
    )
    return [
        Found(
            Position(field=context.text_field, start=m.start(), end=m.end()),
            f"“{m.group()}” is a banned term.",
        )
        for m in _first(pattern.finditer(context.text))
    ]


def _disclosure(params: RequiredDisclosureParams, context: Context) -> list[Found]:
    keyword = _phrases(params.keywords, case_sensitive=False, whole_word=True).search(context.text)
    if keyword is None:
        return []
    if _phrases(params.disclosures, case_sensitive=False, whole_word=True).search(context.text):
        return []
    wanted = ", ".join(f"“{d}”" for d in params.disclosures)
    return [
        Found(
            Position(field=context.text_field, start=keyword.start(), end=keyword.end()),
            f"“{keyword.group()}” needs a disclosure in the same text: one of {wanted}.",
        )
    ]


def _urls(text: str) -> list[tuple[int, int]]:
    spans = []
    for m in _URL.finditer(text):
        start, end = m.start(), m.end()
        opened, closed = text.count("(", start, end), text.count(")", start, end)
        # Trailing punctuation ends the sentence, not the URL; a closing parenthesis belongs
        # to the URL only if it closes one opened inside it.
        while end > start:
            last = text[end - 1]
            if last in _URL_TAIL:
                end -= 1
            elif last == ")" and closed > opened:
                end -= 1
                closed -= 1
            else:
                break
        spans.append((start, end))
    return spans


def _hashtags(params: HashtagLimitParams, context: Context) -> list[Found]:
    urls = _urls(context.text)
    tags = [
        m
        for m in _HASHTAG.finditer(context.text)
        if not any(start <= m.start() < end for start, end in urls)
    ]
    if len(tags) <= params.max:
        return []
    first, last = tags[params.max], tags[-1]
    return [
        Found(
            Position(field=context.text_field, start=first.start(), end=last.end()),
            f"{len(tags)} hashtags; the style guide allows {params.max}.",
        )
    ]


def _length(context: Context, limit: int, source: str) -> list[Found]:
    text, link, platform = context.text, context.link, context.platform
    url_weight = URL_WEIGHT.get(platform or "")
    link_cost = 0
    if link and link not in text:
        link_cost = (url_weight or len(link)) + (1 if text else 0)
    budget = limit - link_cost
    counted = 0
    overflow: int | None = None
    position = 0
    # Weighted URLs are blocks: the overflow starts at the first one that does not fit.
    blocks = [(s, e, url_weight) for s, e in _urls(text)] if url_weight else []
    for start, end, weight in [*blocks, (len(text), len(text), 0)]:
        plain = start - position
        if overflow is None and counted + plain > budget:
            overflow = position + max(0, budget - counted)
        counted += plain
        if overflow is None and weight and counted + weight > budget:
            overflow = start
        counted += weight
        position = end
    total = counted + link_cost
    if total <= limit or overflow is None:
        return []
    where = f" on {platform}" if platform else ""
    note = f" (the link counts {link_cost})" if link_cost else ""
    message = f"{total} characters{where}{note}; the {source} limit is {limit}."
    return [Found(Position(field=context.text_field, start=overflow, end=len(text)), message)]


def _allowed(url: str, allowed: Sequence[str]) -> tuple[bool, str | None]:
    try:
        host = urlsplit(url if "://" in url else "http://" + url).hostname
    except ValueError:
        return False, None
    if not host:
        return False, None
    host = host.rstrip(".")
    return any(host == d or host.endswith("." + d) for d in allowed), host


def _links(params: LinkDomainsParams, context: Context) -> list[Found]:
    found = []
    allowed = params.allowed
    if context.link:
        ok, host = _allowed(context.link, allowed)
        if not ok:
            found.append(Found(Position(field=context.link_field), _off_list(host, allowed)))
    for start, end in _first(iter(_urls(context.text))):
        ok, host = _allowed(context.text[start:end], allowed)
        if not ok:
            position = Position(field=context.text_field, start=start, end=end)
            found.append(Found(position, _off_list(host, allowed)))
    return found


def _off_list(host: str | None, allowed: Sequence[str]) -> str:
    domains = ", ".join(allowed)
    if host is None:
        return f"The link is not a valid URL; links must go to {domains}."
    return f"Links to {host} are not allowed; links must go to {domains} (or a subdomain)."


def _alt_text(context: Context, images: dict[uuid.UUID, str | None]) -> list[Found]:
    found = []
    for index, media in enumerate(context.media):
        if media.asset_id not in images:
            continue
        alt = media.alt_text or images[media.asset_id]
        if not alt or not alt.strip():
            field = f"{context.media_field}[{index}].alt_text"
            found.append(Found(Position(field=field), "This image needs alt text."))
    return found


def _first(matches: Iterator[T]) -> Iterator[T]:
    for count, match in enumerate(matches):
        if count >= MAX_FINDINGS_PER_RULE:
            return
        yield match


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
