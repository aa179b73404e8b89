"""The style guide: rules per district with inheritance, params checked per kind, access by
district, and lint: every rule kind on a violating and a clean text with positions, the
platforms' built-in limits, variants, crowding on an account and blackout clashes."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from services.calendar.models import Asset, Calendar, Post, PostTarget, StyleRule
from services.calendar.styleguide.lint import PLATFORM_LIMITS
from services.calendar.styleguide.schemas import LintSubject
from services.calendar.styleguide.service import style_guide
from tests.calendar.factories import (
    CENTRAL,
    DE_MANAGER,
    FR_MANAGER,
    FR_VIEWER,
    FR_WRITER,
    PARIS_WRITER,
    Accounts,
)
from tests.kit import RunningService, as_user

pytestmark = pytest.mark.asyncio

AT = datetime(2027, 3, 10, 9, 0, tzinfo=UTC)


async def add_rule(
    service: RunningService,
    kind: str,
    params: dict[str, Any],
    district_id: str | None = "fr",
    headers: dict[str, str] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    body = {"kind": kind, "params": params, "district_id": district_id, **fields}
    response = await service.client.post(
        "/style-rules",
        json=body,
        headers=headers or (CENTRAL if district_id is None else FR_MANAGER),
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def lint(
    service: RunningService,
    text: str = "",
    district_id: str | None = "fr",
    headers: dict[str, str] | None = None,
    **subject: Any,
) -> dict[str, Any]:
    content = {"title": "A post", "text": text, **subject.pop("content", {})}
    response = await service.client.post(
        "/lint",
        json={"district_id": district_id, "subject": {"content": content, **subject}},
        headers=headers or FR_WRITER,
    )
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    assert report["errors"] == sum(v["severity"] == "error" for v in report["violations"])
    assert report["warnings"] == len(report["violations"]) - report["errors"]
    return report


def spans(report: dict[str, Any]) -> list[tuple[str, str, int | None, int | None]]:
    return [
        (v["kind"], v["position"]["field"], v["position"]["start"], v["position"]["end"])
        for v in report["violations"]
    ]


# --- rules -----------------------------------------------------------------------------------


async def test_a_manager_adds_a_rule_to_the_district_guide(calendar: RunningService) -> None:
    rule = await add_rule(
        calendar,
        "banned_term",
        {"terms": ["cheap", "free gift"]},
        description="Brand voice: we are never cheap",
    )
    assert rule["district_id"] == "fr"
    assert rule["kind"] == "banned_term"
    assert rule["severity"] == "error"
    assert rule["platform"] is None
    assert rule["enabled"] is True
    assert rule["created_by"] == "francois"
    # Defaults of the kind are stored with the rule.
    assert rule["params"] == {
        "terms": ["cheap", "free gift"],
        "case_sensitive": False,
        "whole_word": True,
    }
    async with calendar.sessions() as session:
        stored = await session.get(StyleRule, uuid.UUID(rule["id"]))
    assert stored is not None
    assert (stored.district_id, stored.kind, stored.params["terms"]) == (
        "fr",
        "banned_term",
        ["cheap", "free gift"],
    )

    for reader in (FR_VIEWER, PARIS_WRITER, CENTRAL):
        fetched = await calendar.client.get(f"/style-rules/{rule['id']}", headers=reader)
        assert fetched.status_code == 200, fetched.text
        assert fetched.json() == rule


async def test_min_spacing_is_a_warning_by_default(calendar: RunningService) -> None:
    rule = await add_rule(calendar, "min_spacing", {"minutes": 60})
    assert rule["severity"] == "warning"
    alt = await add_rule(calendar, "alt_text_required", {}, severity="warning")
    assert (alt["severity"], alt["params"]) == ("warning", {})


async def test_who_may_create_rules(calendar: RunningService) -> None:
    body = {"kind": "hashtag_limit", "params": {"max": 3}}
    contributor = await calendar.client.post(
        "/style-rules", json={**body, "district_id": "fr"}, headers=FR_WRITER
    )
    assert contributor.status_code == 403
    assert contributor.json()["type"].endswith("/forbidden")
    viewer = await calendar.client.post(
        "/style-rules", json={**body, "district_id": "fr"}, headers=FR_VIEWER
    )
    assert viewer.status_code == 403
    # A district manager is not the central team.
    company = await calendar.client.post(
        "/style-rules", json={**body, "district_id": None}, headers=FR_MANAGER
    )
    assert company.status_code == 403
    # Another district does not exist for them.
    foreign = await calendar.client.post(
        "/style-rules", json={**body, "district_id": "fr"}, headers=DE_MANAGER
    )
    assert foreign.status_code == 404
    assert foreign.json()["type"].endswith("/district-not-found")
    # A manager above the district may.
    central = await calendar.client.post(
        "/style-rules", json={**body, "district_id": "fr-paris"}, headers=CENTRAL
    )
    assert central.status_code == 201
    assert await calendar.scalar("SELECT count(*) FROM style_rules") == 1


@pytest.mark.parametrize(
    ("kind", "params", "field"),
    [
        ("banned_term", {"terms": []}, ["terms"]),
        ("banned_term", {"terms": ["x" * 101]}, ["terms", 0]),
        ("banned_term", {"terms": ["   "]}, ["terms", 0]),
        ("banned_term", {"terms": [f"t{i}" for i in range(201)]}, ["terms"]),
        ("banned_term", {"terms": ["a"], "case": True}, ["case"]),
        ("banned_term", {}, ["terms"]),
        ("required_disclosure", {"keywords": ["sponsored"]}, ["disclosures"]),
        ("required_disclosure", {"keywords": [], "disclosures": ["#ad"]}, ["keywords"]),
        ("hashtag_limit", {"max": -1}, ["max"]),
        ("hashtag_limit", {"max": "many"}, ["max"]),
        ("length_limit", {"max": 0}, ["max"]),
        ("link_domains", {"allowed": ["not a domain"]}, ["allowed", 0]),
        ("link_domains", {"allowed": ["localhost"]}, ["allowed", 0]),
        ("link_domains", {"allowed": []}, ["allowed"]),
        ("alt_text_required", {"strict": True}, ["strict"]),
        ("min_spacing", {"minutes": 0}, ["minutes"]),
        ("min_spacing", {"minutes": 10081}, ["minutes"]),
    ],
)
async def test_bad_params_are_422_naming_the_field(
    calendar: RunningService, kind: str, params: dict[str, Any], field: list[Any]
) -> None:
    response = await calendar.client.post(
        "/style-rules",
        json={"kind": kind, "params": params, "district_id": "fr"},
        headers=FR_MANAGER,
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"].endswith("/validation-error")
    locs = [err["loc"] for err in problem["errors"]]
    assert ["body", kind, "params", *field] in locs, locs
    assert await calendar.scalar("SELECT count(*) FROM style_rules") == 0


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "tone_of_voice", "params": {}},
        {"kind": "hashtag_limit", "params": {"max": 1}, "severity": "fatal"},
        {"kind": "hashtag_limit", "params": {"max": 1}, "platform": "X"},
        {"kind": "hashtag_limit", "params": {"max": 1}, "description": "d" * 2001},
        {"kind": "hashtag_limit", "params": {"max": 1}, "district_id": "FR; drop"},
    ],
)
async def test_bad_rules_are_422(calendar: RunningService, body: dict[str, Any]) -> None:
    response = await calendar.client.post(
        "/style-rules", json={"district_id": "fr", **body}, headers=FR_MANAGER
    )
    assert response.status_code == 422, response.text


async def test_link_domains_are_normalised(calendar: RunningService) -> None:
    rule = await add_rule(calendar, "link_domains", {"allowed": ["Example.COM", "*.chorus.dev"]})
    assert rule["params"]["allowed"] == ["example.com", "chorus.dev"]


async def test_update_a_rule(calendar: RunningService) -> None:
    rule = await add_rule(calendar, "hashtag_limit", {"max": 1}, platform="x")
    url = f"/style-rules/{rule['id']}"

    changed = await calendar.client.patch(
        url,
        json={"severity": "warning", "params": {"max": 2}, "platform": None, "description": "Two"},
        headers=FR_MANAGER,
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["severity"], body["params"], body["platform"], body["description"]) == (
        "warning",
        {"max": 2},
        None,
        "Two",
    )
    assert body["kind"] == "hashtag_limit"
    assert body["updated_at"] >= rule["updated_at"]
    report = await lint(calendar, "#one #two #three")
    assert spans(report) == [("hashtag_limit", "text", 10, 16)]
    assert report["violations"][0]["severity"] == "warning"

    # Params are checked against the rule's kind.
    bad = await calendar.client.patch(url, json={"params": {"max": -3}}, headers=FR_MANAGER)
    assert bad.status_code == 422
    assert bad.json()["type"].endswith("/invalid-rule-params")
    assert [e["loc"] for e in bad.json()["errors"]] == [["body", "params", "max"]]
    wrong_kind = await calendar.client.patch(
        url, json={"params": {"terms": ["x"]}}, headers=FR_MANAGER
    )
    assert wrong_kind.status_code == 422
    null = await calendar.client.patch(url, json={"severity": None}, headers=FR_MANAGER)
    assert null.status_code == 422
    kind = await calendar.client.patch(url, json={"kind": "banned_term"}, headers=FR_MANAGER)
    assert kind.status_code == 422

    disabled = await calendar.client.patch(url, json={"enabled": False}, headers=FR_MANAGER)
    assert disabled.json()["enabled"] is False
    assert disabled.json()["params"] == {"max": 2}
    assert (await lint(calendar, "#one #two #three"))["violations"] == []

    assert (await calendar.client.patch(url, json={}, headers=FR_VIEWER)).status_code == 403
    assert (await calendar.client.patch(url, json={}, headers=PARIS_WRITER)).status_code == 403
    assert (await calendar.client.patch(url, json={}, headers=DE_MANAGER)).status_code == 404
    assert await calendar.scalar("SELECT params->>'max' FROM style_rules") == "2"


async def test_delete_a_rule(calendar: RunningService) -> None:
    rule = await add_rule(calendar, "hashtag_limit", {"max": 1})
    url = f"/style-rules/{rule['id']}"
    assert (await calendar.client.delete(url, headers=DE_MANAGER)).status_code == 404
    assert (await calendar.client.delete(url, headers=FR_WRITER)).status_code == 403
    deleted = await calendar.client.delete(url, headers=FR_MANAGER)
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert (await calendar.client.get(url, headers=FR_MANAGER)).status_code == 404
    assert await calendar.scalar("SELECT count(*) FROM style_rules") == 0
    assert (await calendar.client.delete(url, headers=FR_MANAGER)).status_code == 404


async def test_a_foreign_districts_rule_is_404(calendar: RunningService) -> None:
    fr = await add_rule(calendar, "hashtag_limit", {"max": 1})
    paris = await add_rule(calendar, "hashtag_limit", {"max": 2}, district_id="fr-paris")
    for rule_id in (fr["id"], paris["id"]):
        response = await calendar.client.get(f"/style-rules/{rule_id}", headers=DE_MANAGER)
        assert response.status_code == 404
        assert response.json()["type"].endswith("/style-rule-not-found")
    # A district's managers and readers see the rules of the districts below it.
    assert (
        await calendar.client.get(f"/style-rules/{paris['id']}", headers=FR_VIEWER)
    ).status_code == 200
    unknown = await calendar.client.get(f"/style-rules/{uuid.uuid4()}", headers=CENTRAL)
    assert unknown.status_code == 404
    nobody = as_user("nobody")
    company = await add_rule(calendar, "hashtag_limit", {"max": 3}, district_id=None)
    assert (
        await calendar.client.get(f"/style-rules/{company['id']}", headers=nobody)
    ).status_code == 404
    listed = await calendar.client.get("/style-rules", headers=nobody)
    assert listed.json()["items"] == []


async def test_the_guide_of_a_district_is_inherited(calendar: RunningService) -> None:
    company = await add_rule(calendar, "banned_term", {"terms": ["synergy"]}, district_id=None)
    fr = await add_rule(calendar, "banned_term", {"terms": ["cheap"]})
    de = await add_rule(
        calendar, "banned_term", {"terms": ["billig"]}, district_id="de", headers=DE_MANAGER
    )
    paris = await add_rule(
        calendar, "banned_term", {"terms": ["bof"]}, district_id="fr-paris", headers=CENTRAL
    )

    async def listed(district_id: str | None, headers: dict[str, str]) -> list[str]:
        params = {"district_id": district_id} if district_id else {}
        response = await calendar.client.get("/style-rules", params=params, headers=headers)
        assert response.status_code == 200, response.text
        return [r["id"] for r in response.json()["items"]]

    assert await listed("fr-paris", PARIS_WRITER) == [company["id"], fr["id"], paris["id"]]
    assert await listed("fr", FR_VIEWER) == [company["id"], fr["id"]]
    assert await listed("de", DE_MANAGER) == [company["id"], de["id"]]
    assert await listed(None, PARIS_WRITER) == [company["id"]]
    foreign = await calendar.client.get(
        "/style-rules", params={"district_id": "de"}, headers=PARIS_WRITER
    )
    assert foreign.status_code == 404

    text = "Cheap synergy, billig, bof"
    report = await lint(calendar, text, district_id="fr-paris", headers=PARIS_WRITER)
    assert [(v["rule_id"], v["position"]["start"]) for v in report["violations"]] == [
        (fr["id"], 0),
        (company["id"], 6),
        (paris["id"], 23),
    ]
    report = await lint(calendar, text, district_id="de", headers=DE_MANAGER)
    assert [v["rule_id"] for v in report["violations"]] == [company["id"], de["id"]]
    # The company-wide calendar follows the company-wide guide only.
    report = await lint(calendar, text, district_id=None, headers=CENTRAL)
    assert [v["rule_id"] for v in report["violations"]] == [company["id"]]

    # The same through the function posts call.
    async with calendar.sessions() as session:
        subject = LintSubject.model_validate({"content": {"title": "t", "text": text}})
        direct = await style_guide.lint(session, "hq.fr.fr-paris", subject)
    assert [str(v.rule_id) for v in direct.violations] == [fr["id"], company["id"], paris["id"]]


async def test_rules_are_paginated(calendar: RunningService) -> None:
    made = [(await add_rule(calendar, "hashtag_limit", {"max": i}))["id"] for i in range(5)]
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params: dict[str, Any] = {"district_id": "fr", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await calendar.client.get("/style-rules", params=params, headers=FR_VIEWER)).json()
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made
    kinds = await calendar.client.get(
        "/style-rules", params={"district_id": "fr", "kind": "banned_term"}, headers=FR_VIEWER
    )
    assert kinds.json() == {"items": [], "next_cursor": None}
    bad = await calendar.client.get("/style-rules", params={"cursor": "bm9wZQ"}, headers=CENTRAL)
    assert bad.status_code == 400


# --- lint: each kind -------------------------------------------------------------------------


async def test_banned_terms(calendar: RunningService) -> None:
    rule = await add_rule(calendar, "banned_term", {"terms": ["cheap", "free gift"]})
    report = await lint(calendar, "Cheap! A FREE GIFT, not the cheapest.")
    assert spans(report) == [("banned_term", "text", 0, 5), ("banned_term", "text", 9, 18)]
    first = report["violations"][0]
    assert first["rule_id"] == rule["id"]
    assert first["severity"] == "error"
    assert first["platform"] is None
    assert "Cheap" in first["message"]
    assert (await lint(calendar, "Good value, a gift for you."))["violations"] == []


async def test_banned_terms_case_sensitive_and_inside_words(calendar: RunningService) -> None:
    await add_rule(
        calendar, "banned_term", {"terms": ["AI"], "case_sensitive": True, "whole_word": False}
    )
    report = await lint(calendar, "Said: FAIR AI, not ai")
    assert spans(report) == [("banned_term", "text", 7, 9), ("banned_term", "text", 11, 13)]
    assert (await lint(calendar, "fair ai"))["violations"] == []


async def test_required_disclosure(calendar: RunningService) -> None:
    rule = await add_rule(
        calendar,
        "required_disclosure",
        {"keywords": ["sponsored", "partner"], "disclosures": ["#ad", "Sponsored"]},
    )
    report = await lint(calendar, "Thanks to our Partner for this #adventure")
    assert spans(report) == [("required_disclosure", "text", 14, 21)]
    assert report["violations"][0]["rule_id"] == rule["id"]
    assert "#ad" in report["violations"][0]["message"]
    assert (await lint(calendar, "Thanks to our partner #AD"))["violations"] == []
    # The keyword may itself be the disclosure.
    assert (await lint(calendar, "Sponsored: our new range"))["violations"] == []
    assert (await lint(calendar, "Our new range, out now"))["violations"] == []


async def test_hashtag_limit(calendar: RunningService) -> None:
    await add_rule(calendar, "hashtag_limit", {"max": 2})
    text = "#one #two #three and #four"
    report = await lint(calendar, text)
    assert spans(report) == [("hashtag_limit", "text", 10, 26)]
    assert text[10:26] == "#three and #four"
    assert "4 hashtags" in report["violations"][0]["message"]
    # Numbers, URL fragments and word#letters are not hashtags.
    clean = "#one #two #2027 https://chorus.dev/page#section C#sharp"
    assert (await lint(calendar, clean))["violations"] == []


async def test_length_limit_counts_the_link_as_the_platform_does(
    calendar: RunningService,
) -> None:
    rule = await add_rule(calendar, "length_limit", {"max": 40}, platform="instagram")
    link = "https://chorus.dev/spring"  # 25 characters
    text = "Our spring range is here"  # 24 characters: 24 + 1 + 25 = 50
    report = await lint(
        calendar,
        text,
        content={"link": link},
        platforms=["instagram", "x"],
        account_ids=[],
    )
    assert spans(report) == [("length_limit", "text", 14, 24)]
    violation = report["violations"][0]
    assert (violation["rule_id"], violation["platform"]) == (rule["id"], "instagram")
    assert "50 characters" in violation["message"]
    # On X the link would count 23, but the rule is for Instagram only.
    fits = await lint(calendar, "Spring range", content={"link": link}, platforms=["instagram"])
    assert fits["violations"] == []
    # A rule for one platform does not apply to the master alone.
    assert (await lint(calendar, text, content={"link": link}))["violations"] == []


async def test_a_length_limit_for_every_platform_counts_per_platform(
    calendar: RunningService,
) -> None:
    await add_rule(calendar, "length_limit", {"max": 40})
    report = await lint(
        calendar,
        "a" * 20,
        content={"link": "https://chorus.dev/spring"},
        platforms=["instagram", "linkedin", "x"],
    )
    # 20 + 1 + 25 = 46 on Instagram and LinkedIn (the same finding, reported once);
    # 20 + 1 + 23 = 44 on X.
    assert spans(report) == [("length_limit", "text", 14, 20), ("length_limit", "text", 16, 20)]
    assert [v["platform"] for v in report["violations"]] == ["instagram", "x"]
    assert "46 characters" in report["violations"][0]["message"]
    assert "44 characters" in report["violations"][1]["message"]
    # The master alone counts the link in full.
    assert spans(await lint(calendar, "a" * 20, content={"link": "https://chorus.dev/spring"}))[
        0
    ] == ("length_limit", "text", 14, 20)
    assert (await lint(calendar, "a" * 40))["violations"] == []


async def test_built_in_platform_limits(calendar: RunningService) -> None:
    assert PLATFORM_LIMITS["x"] == 280
    text = "a" * 281
    report = await lint(calendar, text, platforms=["x", "instagram"])
    assert spans(report) == [("platform_limit", "text", 280, 281)]
    violation = report["violations"][0]
    assert (violation["rule_id"], violation["severity"], violation["platform"]) == (
        None,
        "error",
        "x",
    )
    # X counts every URL as 23 characters, in the text and the appended link.
    url = "https://chorus.dev/" + "p" * 100
    within = "b" * 200 + " " + url
    assert (await lint(calendar, within, platforms=["x"]))["violations"] == []
    with_link = await lint(
        calendar, "c" * 257, content={"link": url}, platforms=["x"]
    )  # 257 + 1 + 23 = 281
    assert spans(with_link) == [("platform_limit", "text", 256, 257)]
    assert "the link counts 24" in with_link["violations"][0]["message"]
    # An unknown platform has no built-in limit.
    assert (await lint(calendar, "d" * 10_000, platforms=["pinterest"]))["violations"] == []


async def test_link_domains(calendar: RunningService) -> None:
    await add_rule(calendar, "link_domains", {"allowed": ["chorus.dev", "example.org"]})
    text = "See https://shop.chorus.dev/a, www.evil.com and (https://evil-chorus.dev/x)."
    report = await lint(calendar, text, content={"link": "https://tracker.io/c?u=1"})
    assert spans(report) == [
        ("link_domains", "link", None, None),
        ("link_domains", "text", 31, 43),
        ("link_domains", "text", 49, 74),
    ]
    assert text[31:43] == "www.evil.com"
    assert text[49:74] == "https://evil-chorus.dev/x"
    assert "tracker.io" in report["violations"][0]["message"]
    clean = await lint(
        calendar,
        "Read https://chorus.dev/news and https://www.example.org.",
        content={"link": "https://CHORUS.dev:443/x"},
    )
    assert clean["violations"] == []


async def test_alt_text_required(calendar: RunningService) -> None:
    await add_rule(calendar, "alt_text_required", {})
    bare, described, document = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with calendar.sessions.begin() as session:
        for asset_id, content_type, alt in (
            (bare, "image/png", None),
            (described, "image/jpeg", "Our team at the fair"),
            (document, "application/pdf", None),
        ):
            session.add(
                Asset(
                    id=asset_id,
                    district_id="fr",
                    sha256=asset_id.hex,
                    storage_key=asset_id.hex,
                    content_type=content_type,
                    size_bytes=10,
                    title="asset",
                    alt_text=alt,
                    created_by="test",
                )
            )
    media = [
        {"asset_id": str(document)},
        {"asset_id": str(described)},
        {"asset_id": str(bare)},
        {"asset_id": str(bare), "alt_text": "  "},
    ]
    variants = [{"platform": "instagram", "media": [{"asset_id": str(bare)}]}]
    report = await lint(
        calendar,
        "Photos",
        content={"media": media, "variants": variants},
        platforms=["x", "instagram", "linkedin"],
    )
    assert spans(report) == [
        ("alt_text_required", "media[2].alt_text", None, None),
        ("alt_text_required", "media[3].alt_text", None, None),
        ("alt_text_required", "variants.instagram.media[0].alt_text", None, None),
    ]
    assert [v["platform"] for v in report["violations"]] == [None, None, "instagram"]
    fixed = [{"asset_id": str(bare), "alt_text": "A chart of our sales"}, media[1]]
    clean = await lint(calendar, "Photos", content={"media": fixed}, platforms=["x"])
    assert clean["violations"] == []


async def test_variants_positions_and_one_report_per_master_problem(
    calendar: RunningService,
) -> None:
    await add_rule(calendar, "banned_term", {"terms": ["cheap"]})
    variants = [
        {"platform": "instagram", "text": "So cheap, so good"},
        {"platform": "linkedin", "link": "https://chorus.dev"},
    ]
    report = await lint(
        calendar,
        "cheap deals",
        content={"variants": variants},
        platforms=["x", "instagram", "linkedin", "x"],
    )
    assert spans(report) == [
        ("banned_term", "text", 0, 5),
        ("banned_term", "variants.instagram.text", 3, 8),
    ]
    assert [v["platform"] for v in report["violations"]] == [None, "instagram"]
    assert report["errors"] == 2


async def test_a_platform_rule_applies_to_its_platform_only(calendar: RunningService) -> None:
    await add_rule(calendar, "hashtag_limit", {"max": 0}, platform="linkedin")
    assert (await lint(calendar, "#news", platforms=["x"]))["violations"] == []
    assert (await lint(calendar, "#news"))["violations"] == []
    report = await lint(calendar, "#news", platforms=["x", "linkedin"])
    assert [(v["platform"], v["position"]["start"]) for v in report["violations"]] == [
        ("linkedin", 0)
    ]


# --- lint: crowding and blackouts -------------------------------------------------------------


async def add_post(
    service: RunningService,
    accounts: list[tuple[uuid.UUID, str]],
    publish_at: datetime,
    status: str = "scheduled",
) -> uuid.UUID:
    post_id = uuid.uuid4()
    async with service.sessions.begin() as session:
        calendar_id = await session.scalar(select(Calendar.id).where(Calendar.district_id == "fr"))
        if calendar_id is None:
            calendar_id = uuid.uuid4()
            session.add(Calendar(id=calendar_id, district_id="fr", name="France"))
            await session.flush()
        session.add(
            Post(
                id=post_id,
                calendar_id=calendar_id,
                district_id="fr",
                title="Another post",
                text="Hello",
                publish_at=publish_at,
                author="fanny",
                status=status,
                content_hash="0" * 64,
            )
        )
        await session.flush()
        for account_id, platform in accounts:
            session.add(
                PostTarget(
                    post_id=post_id,
                    account_id=account_id,
                    platform=platform,
                    publish_at=publish_at,
                )
            )
    return post_id


async def test_crowding_on_an_account(calendar: RunningService, accounts: Accounts) -> None:
    rule = await add_rule(calendar, "min_spacing", {"minutes": 60})
    near = await add_post(calendar, [(accounts.fr_x, "x")], AT + timedelta(minutes=30))
    await add_post(calendar, [(accounts.fr_x, "x")], AT - timedelta(minutes=60))  # exactly 60
    await add_post(calendar, [(accounts.fr_x, "x")], AT + timedelta(minutes=5), "cancelled")
    await add_post(calendar, [(accounts.fr_instagram, "instagram")], AT + timedelta(minutes=10))
    subject = {
        "platforms": ["x"],
        "account_ids": [str(accounts.fr_x)],
        "publish_at": AT.isoformat(),
    }
    report = await lint(calendar, "Hello", **subject)
    assert spans(report) == [("min_spacing", "publish_at", None, None)]
    violation = report["violations"][0]
    assert (violation["rule_id"], violation["severity"]) == (rule["id"], "warning")
    assert "@chorus_fr" in violation["message"]
    assert "30 minutes" in violation["message"]
    assert "09:30 UTC" in violation["message"]
    assert str(near) not in violation["message"]
    assert (report["errors"], report["warnings"]) == (0, 1)

    # The post itself does not crowd itself.
    itself = await lint(calendar, "Hello", **subject, post_id=str(near))
    assert itself["violations"] == []
    # Both accounts crowded: one warning per account.
    both = await lint(
        calendar,
        "Hello",
        platforms=["x", "instagram"],
        account_ids=[str(accounts.fr_x), str(accounts.fr_instagram)],
        publish_at=AT.isoformat(),
    )
    assert len(both["violations"]) == 2
    assert sorted("@chorus.fr" in v["message"] for v in both["violations"]) == [False, True]
    # Far enough, or without a time: nothing.
    later = await lint(
        calendar,
        "Hello",
        platforms=["x"],
        account_ids=[str(accounts.fr_x)],
        publish_at=(AT + timedelta(minutes=91)).isoformat(),
    )
    assert later["violations"] == []
    assert (await lint(calendar, "Hello", account_ids=[str(accounts.fr_x)]))["violations"] == []

    # Each rule keeps its own spacing: a wider rule sees the post 60 minutes away, the
    # 60-minute rule does not.
    wide = await add_rule(calendar, "min_spacing", {"minutes": 120}, severity="error")
    itself = await lint(calendar, "Hello", **subject, post_id=str(near))
    assert [(v["rule_id"], v["severity"]) for v in itself["violations"]] == [(wide["id"], "error")]
    assert "08:00 UTC, 60 minutes" in itself["violations"][0]["message"]


async def test_lint_refuses_accounts_the_post_cannot_target(
    calendar: RunningService, accounts: Accounts
) -> None:
    for account_id in (accounts.de_x, uuid.uuid4()):
        response = await calendar.client.post(
            "/lint",
            json={
                "district_id": "fr",
                "subject": {
                    "content": {"title": "t"},
                    "account_ids": [str(accounts.fr_x), str(account_id)],
                },
            },
            headers=FR_WRITER,
        )
        assert response.status_code == 422
        assert response.json()["type"].endswith("/unknown-accounts")
        assert response.json()["account_ids"] == [str(account_id)]
    # A team cannot lint with its parent district's accounts either.
    response = await calendar.client.post(
        "/lint",
        json={
            "district_id": "fr-paris",
            "subject": {"content": {"title": "t"}, "account_ids": [str(accounts.fr_x)]},
        },
        headers=FR_MANAGER,
    )
    assert response.status_code == 422


async def test_lint_access_and_validation(calendar: RunningService) -> None:
    body = {"district_id": "fr", "subject": {"content": {"title": "t", "text": "x"}}}
    assert (await calendar.client.post("/lint", json=body, headers=FR_VIEWER)).status_code == 200
    foreign = await calendar.client.post("/lint", json=body, headers=DE_MANAGER)
    assert foreign.status_code == 404
    nobody = await calendar.client.post(
        "/lint", json={**body, "district_id": None}, headers=as_user("nobody")
    )
    assert nobody.status_code == 403
    for subject in (
        {"content": {"title": "t"}, "publish_at": "2027-01-10T09:00:00"},
        {"content": {"title": "t"}, "platforms": ["X!"]},
        {"content": {"title": "t"}, "platforms": ["x"] * 101},
        {"content": {"title": ""}},
        {"content": {"title": "t"}, "extra": 1},
    ):
        response = await calendar.client.post(
            "/lint", json={"district_id": "fr", "subject": subject}, headers=FR_WRITER
        )
        assert response.status_code == 422, subject


async def test_a_blackout_clash_is_an_error(calendar: RunningService) -> None:
    created = await calendar.client.post(
        "/blackouts",
        json={
            "district_id": "fr",
            "starts_at": "2027-03-10T08:00:00+00:00",
            "ends_at": "2027-03-10T12:00:00+01:00",
            "reason": "Election day",
        },
        headers=FR_MANAGER,
    )
    assert created.status_code == 201, created.text
    report = await lint(
        calendar, "Hello", district_id="fr-paris", headers=PARIS_WRITER, publish_at=AT.isoformat()
    )
    assert spans(report) == [("blackout", "publish_at", None, None)]
    violation = report["violations"][0]
    assert (violation["rule_id"], violation["severity"]) == (None, "error")
    assert "Election day" in violation["message"]
    assert "11:00 UTC" in violation["message"]
    # At the end of the period, or in another district, or with no time: clear.
    for district, headers, at in (
        ("fr", FR_WRITER, "2027-03-10T11:00:00+00:00"),
        ("de", DE_MANAGER, AT.isoformat()),
        ("fr", FR_WRITER, None),
    ):
        clear = await lint(calendar, "Hello", district_id=district, headers=headers, publish_at=at)
        assert clear["violations"] == []


@pytest.mark.parametrize(
    "instant", ["0001-01-01T12:00:00+00:00", "0001-01-01T00:30:00+01:00", "9999-12-31T23:59:59Z"]
)
async def test_lint_refuses_a_time_outside_the_years_planned(
    calendar: RunningService, accounts: Accounts, instant: str
) -> None:
    subject = {
        "content": {"title": "t"},
        "publish_at": instant,
        "account_ids": [str(accounts.fr_x)],
    }
    response = await calendar.client.post(
        "/lint", json={"district_id": "fr", "subject": subject}, headers=FR_WRITER
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["loc"] for e in response.json()["errors"]] == [["body", "subject", "publish_at"]]


# --- the same rule twice ---------------------------------------------------------------------


async def test_an_identical_rule_is_refused_naming_the_one_there(calendar: RunningService) -> None:
    first = await add_rule(calendar, "banned_term", {"terms": ["cheap"]}, severity="warning")
    # The same rule: params as stored (defaults filled in), other severity and description.
    again = await calendar.client.post(
        "/style-rules",
        json={
            "kind": "banned_term",
            "district_id": "fr",
            "params": {"whole_word": True, "terms": ["cheap"], "case_sensitive": False},
            "description": "again",
        },
        headers=FR_MANAGER,
    )
    assert again.status_code == 409, again.text
    body = again.json()
    assert body["type"].endswith("/style-rule-exists")
    assert body["existing_rule_id"] == first["id"]
    assert first["id"] in body["detail"]
    # Another district, platform or params is another rule.
    await add_rule(calendar, "banned_term", {"terms": ["cheap"]}, district_id=None)
    await add_rule(calendar, "banned_term", {"terms": ["cheap"]}, platform="x")
    other = await add_rule(calendar, "banned_term", {"terms": ["cheaper"]})
    # An edit that would make a rule identical to another is refused too.
    edited = await calendar.client.patch(
        f"/style-rules/{other['id']}", json={"params": {"terms": ["cheap"]}}, headers=FR_MANAGER
    )
    assert edited.status_code == 409, edited.text
    assert edited.json()["existing_rule_id"] == first["id"]
    count = await calendar.scalar(
        "SELECT count(*) FROM style_rules WHERE district_id = 'fr' AND platform IS NULL"
    )
    assert count == 2


async def test_concurrent_identical_rules_make_one(calendar: RunningService) -> None:
    body = {"kind": "hashtag_limit", "params": {"max": 3}, "district_id": "fr"}
    responses = await asyncio.gather(
        *(calendar.client.post("/style-rules", json=body, headers=FR_MANAGER) for _ in range(6))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 409, 409, 409, 409, 409], [r.text for r in responses]
    [made] = [r.json()["id"] for r in responses if r.status_code == 201]
    assert {r.json()["existing_rule_id"] for r in responses if r.status_code == 409} == {made}
    assert await calendar.scalar("SELECT count(*) FROM style_rules") == 1


async def test_lint_never_reports_the_same_finding_twice(calendar: RunningService) -> None:
    """Rules that find the same thing at the same place (the company's and a district's, a
    copy made before identical rules were refused, two lists sharing a term) report it once,
    as the more severe one's."""
    company = await add_rule(
        calendar, "banned_term", {"terms": ["cheap"]}, district_id=None, severity="warning"
    )
    district = await add_rule(calendar, "banned_term", {"terms": ["cheap", "free"]})
    async with calendar.sessions.begin() as session:
        copy = StyleRule(
            id=uuid.uuid4(),
            district_id="fr",
            kind="banned_term",
            severity="error",
            params={"terms": ["cheap", "free"], "case_sensitive": False, "whole_word": True},
            created_by="legacy",
        )
        session.add(copy)
    report = await lint(calendar, "Cheap and free.", platforms=["x", "instagram"])
    assert spans(report) == [("banned_term", "text", 0, 5), ("banned_term", "text", 10, 14)]
    cheap = report["violations"][0]
    assert cheap["severity"] == "error"
    assert cheap["rule_id"] in {district["id"], str(copy.id)}
    assert cheap["rule_id"] != company["id"]
    assert report["errors"] == 2
