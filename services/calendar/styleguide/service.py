"""The style guide: its rules and the lint that checks a post against them.

Rules are company-wide (``district_id`` NULL) or a district's additions; the guide in force
for a district is the company's rules, its ancestors' and its own. Who sees a rule: whoever
reads a district it applies to (a team sees the rules above it that bind it, not a sibling's:
404). Changing one needs a manager on its district, or the central team for company-wide ones.

Lint (``style_guide.lint``: it reads what the pure engine in ``lint.py`` checks) checks the
content as it goes out on each target platform (the platform's variant over the master), plus
the built-in platform length limits and the blackouts. Decisions worth knowing:

- Positions are offsets in Unicode code points into the text named by ``field``, start
  inclusive and end exclusive. Each problem is reported once per rule, field and span: a
  problem in the master text shared by several platforms comes once, with ``platform`` null.
  Length problems name the platform they were counted for (X counts links differently), and
  each platform's built-in limit is a rule of its own.
- Length counts code points. The link, when not already in the text, is counted as the
  scheduler appends it: after a space, at its length, except on X, where t.co makes every
  URL (in the text too) count 23. X's double weight of CJK characters and emoji is not
  modelled.
- Crowding (``min_spacing``) is "strictly less than ``minutes`` apart": posts exactly that far
  apart are fine. It is reported per account, naming the nearest other post's time, never
  its id (it may belong to a calendar the caller cannot read).
- Each rule reports at most ``MAX_FINDINGS_PER_RULE`` findings per field, so a long text full
  of a banned term gives a readable report.
- An asset whose usage rights end at or before the publish time (now, without one) is a
  built-in ``asset_rights_expired`` finding on its media entry, naming the asset. Lint reports
  it as a warning, because while drafting the rights may still be renewed or the asset
  swapped; submission (``SUBMIT_ERRORS``) and scheduling refuse it.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.districts import Scope, can_read
from chassis.errors import Conflict, Forbidden, NotFound, Unprocessable
from chassis.pagination import Page, PageRequest, keyset_page
from services.calendar.access import (
    delete_managed,
    optional_district_path,
    require_manage,
    require_manage_district,
    tree,
)
from services.calendar.accounts.service import UNKNOWN_ACCOUNT
from services.calendar.blackouts.repository import clashes
from services.calendar.models import StyleRule
from services.calendar.repository import insert_row, save_row
from services.calendar.styleguide import lint, repository
from services.calendar.styleguide.schemas import (
    PARAMS_MODELS,
    LintReport,
    LintRequest,
    LintSubject,
    StyleRuleCreate,
    StyleRuleOut,
    StyleRuleUpdate,
)


class StyleRuleNotFound(NotFound):
    type_slug = "style-rule-not-found"
    title = "Style rule not found"


class InvalidRuleParams(Unprocessable):
    type_slug = "invalid-rule-params"
    title = "The rule's parameters do not fit its kind"


class StyleRuleExists(Conflict):
    """The same rule (district, kind, platform and params) is already in the guide: a second
    copy would report every violation twice."""

    type_slug = "style-rule-exists"
    title = "The style guide already has this rule"


class UnknownAccounts(Unprocessable):
    type_slug = "unknown-accounts"
    title = "Lint was given accounts the post cannot target"


class StyleGuide:
    # --- rules ---------------------------------------------------------------------------

    async def create(
        self, session: AsyncSession, scope: Scope, data: StyleRuleCreate
    ) -> StyleRuleOut:
        await require_manage_district(session, scope, data.district_id, "Changing the style guide")
        severity = data.severity or ("warning" if data.kind == "min_spacing" else "error")
        rule = StyleRule(
            id=uuid.uuid4(),
            **data.model_dump(exclude={"severity", "params"}),
            severity=severity,
            params=data.params.model_dump(mode="json"),
            created_by=scope.principal.sub,
        )
        await self._refuse_identical(session, rule)
        return StyleRuleOut.model_validate(await insert_row(session, rule))

    async def list_applying(
        self,
        session: AsyncSession,
        scope: Scope,
        page: PageRequest,
        *,
        district_id: str | None,
        kind: str | None,
    ) -> Page[StyleRuleOut]:
        """The rules in force for the district (enabled or not), company-wide ones only
        without it, oldest first."""
        path = await optional_district_path(session, scope, district_id)
        if path is None and not can_read(scope, None):
            return Page[StyleRuleOut](items=[])
        rows = await repository.rules_applying(
            session,
            path,
            enabled_only=False,
            kind=kind,
            after=page.after_key(datetime, uuid.UUID),
            limit=page.fetch,
        )
        return keyset_page(
            rows,
            page,
            key=lambda rule: (rule.created_at, rule.id),
            item=StyleRuleOut.model_validate,
        )

    async def get(self, session: AsyncSession, scope: Scope, rule_id: uuid.UUID) -> StyleRuleOut:
        rule, _ = await self._get_visible(session, scope, rule_id)
        return StyleRuleOut.model_validate(rule)

    async def update(
        self, session: AsyncSession, scope: Scope, rule_id: uuid.UUID, data: StyleRuleUpdate
    ) -> StyleRuleOut:
        rule, path = await self._get_visible(session, scope, rule_id)
        require_manage(scope, path, "Changing the style guide")
        given = data.model_fields_set
        if "params" in given and data.params is not None:
            rule.params = _validated_params(rule.kind, data.params)
        if "severity" in given and data.severity is not None:
            rule.severity = data.severity
        if "enabled" in given and data.enabled is not None:
            rule.enabled = data.enabled
        if "description" in given:
            rule.description = data.description
        if "platform" in given:
            rule.platform = data.platform
        if given & {"params", "platform"}:
            await self._refuse_identical(session, rule)
        rule.updated_at = func.now()
        return StyleRuleOut.model_validate(await save_row(session, rule))

    async def delete(self, session: AsyncSession, scope: Scope, rule_id: uuid.UUID) -> None:
        await delete_managed(
            session, scope, StyleRule, rule_id, StyleRuleNotFound, "Changing the style guide"
        )

    async def _refuse_identical(self, session: AsyncSession, rule: StyleRule) -> None:
        """409 when another rule has the same district, kind, platform and params. The check
        holds under concurrent writes: each writer first takes the transaction-level lock of
        the rule's identity, so a second writer waits for the first to commit and then finds
        its row."""
        await repository.lock_rule_identity(session, identity_lock_key(rule))
        existing = await repository.find_identical_rule(
            session,
            district_id=rule.district_id,
            kind=rule.kind,
            platform=rule.platform,
            params=rule.params,
            other_than=rule.id,
        )
        if existing is not None:
            raise StyleRuleExists(
                f"Style rule {existing} is already this rule (same district, kind, platform and "
                "params); change or enable that one instead.",
                existing_rule_id=str(existing),
            )

    async def _get_visible(
        self, session: AsyncSession, scope: Scope, rule_id: uuid.UUID
    ) -> tuple[StyleRule, str | None]:
        return await tree.load_scoped(session, scope, StyleRule, rule_id, StyleRuleNotFound)

    # --- lint ----------------------------------------------------------------------------

    async def lint_request(
        self, session: AsyncSession, scope: Scope, data: LintRequest
    ) -> LintReport:
        """Lint for a caller: the district must be one they read, the accounts ones of
        districts they read that the post could target (else crowding would tell them
        about other districts' schedules)."""
        path = await optional_district_path(session, scope, data.district_id)
        if path is None and not can_read(scope, None):
            raise Forbidden("Linting needs a role in the organisation.")
        outside = await repository.accounts_outside(
            session, data.subject.account_ids, path, scope.read_paths
        )
        if outside:
            raise UnknownAccounts(
                "Some accounts are unknown or not targetable from this district. "
                + UNKNOWN_ACCOUNT,
                account_ids=[str(a) for a in outside],
            )
        return await self.lint(session, path, data.subject)

    async def lint(
        self, session: AsyncSession, path: str | None, subject: LintSubject
    ) -> LintReport:
        """Check `subject` against the style guide of the district at `path` (None: the
        company-wide calendar, where only company-wide rules apply), the platforms' length
        limits and the blackouts. Reads only; the caller decides what errors mean. The
        checks are the engine's (``lint``); this reads what they need."""
        rules = [
            lint.Rule.of(rule)
            for rule in await repository.rules_applying(session, path, enabled_only=True)
        ]
        contexts = list(lint.contexts_of(subject))
        findings = lint.Findings()
        images: dict[uuid.UUID, str | None] = {}
        if lint.needs_images(rules):
            images = await repository.images(session, lint.media_ids(contexts))
        lint.check_content(findings, rules, contexts, images)
        ending = await repository.rights_ending(
            session, lint.media_ids(contexts), path, subject.publish_at or datetime.now(UTC)
        )
        lint.check_rights(findings, contexts, ending, subject.publish_at)
        at = subject.publish_at
        if at is not None:
            spacing = lint.spacing_rules(rules, subject)
            if spacing and subject.account_ids:
                near = await repository.neighbours(
                    session, subject.account_ids, at, lint.widest_spacing(spacing), subject.post_id
                )
                lint.check_spacing(findings, spacing, near, at)
            lint.check_blackouts(findings, await clashes(session, path, at))
        return findings.report()


style_guide = StyleGuide()


def identity_lock_key(rule: StyleRule) -> int:
    """The advisory lock key of a rule's identity (district, kind, platform, params): the
    first 8 bytes of the sha256 of its canonical JSON, as PostgreSQL's signed bigint."""
    canonical = json.dumps(
        [rule.district_id, rule.kind, rule.platform, rule.params],
        sort_keys=True,
        separators=(",", ":"),
    )
    digest = hashlib.sha256(b"calendar.style_rule:" + canonical.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _validated_params(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    try:
        model = PARAMS_MODELS[kind].model_validate(params)
    except ValidationError as exc:
        errors = [
            {"loc": ["body", "params", *err["loc"]], "msg": err["msg"], "type": err["type"]}
            for err in exc.errors()
        ]
        raise InvalidRuleParams(
            f"These parameters do not fit a {kind} rule; see 'errors'.", errors=errors
        ) from exc
    return model.model_dump(mode="json")
