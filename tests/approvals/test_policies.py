"""Approval policies: inherited down the district tree (a district adds steps, never drops or
redefines one), versioned, validated (422 naming the step or the escalation cycle), routed by
keyword, pattern, platform and campaign tag with the reasons, resolved per district with the
roster's quorum, retired; the dry run; and who may do what."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from services.approvals.models import PolicyVersion
from services.approvals.policies.schemas import SubjectFacts
from services.approvals.policies.service import UnknownDistrict, plan_for
from tests.approvals.factories import (
    CENTRAL,
    DE_MANAGER,
    FR_MANAGER,
    FR_VIEWER,
    FR_WRITER,
    PARIS_MANAGER,
)
from tests.kit import RunningService, as_user

pytestmark = pytest.mark.asyncio


def step(key: str, role: str = "district_manager", **extra: Any) -> dict[str, Any]:
    return {"key": key, "name": key.replace("-", " ").capitalize(), "role": role, **extra}


async def put_policy(
    approvals: RunningService,
    district_id: str | None,
    steps: list[dict[str, Any]],
    *,
    kind: str = "post",
    headers: dict[str, str] | None = None,
    description: str | None = None,
    expect: int | None = None,
) -> dict[str, Any]:
    params = {} if district_id is None else {"district_id": district_id}
    if headers is None:
        headers = CENTRAL if district_id in (None, "hq") else FR_MANAGER
    response = await approvals.client.put(
        f"/policies/{kind}",
        params=params,
        json={"steps": steps, "description": description},
        headers=headers,
    )
    if expect is None:
        assert response.status_code in (200, 201), response.text
    else:
        assert response.status_code == expect, response.text
    result: dict[str, Any] = response.json()
    return result


async def dry_run(
    approvals: RunningService,
    district_id: str = "fr-paris",
    headers: dict[str, str] = CENTRAL,
    **body: Any,
) -> dict[str, Any]:
    response = await approvals.client.post(
        "/policies/dry-run", json={"district_id": district_id, **body}, headers=headers
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def keys(plan: dict[str, Any]) -> list[str]:
    return [s["key"] for s in plan["steps"]]


async def three_levels(approvals: RunningService) -> tuple[str, str, str]:
    company = await put_policy(approvals, None, [step("brand-check", "brand", resolve_at="root")])
    hq = await put_policy(approvals, "hq", [step("regional-ok", "regional_manager")])
    fr = await put_policy(approvals, "fr", [step("fr-manager"), step("fr-approver", "approver")])
    return company["id"], hq["id"], fr["id"]


class TestInheritance:
    async def test_the_chain_is_company_then_ancestors_then_own(
        self, approvals: RunningService
    ) -> None:
        company, hq, fr = await three_levels(approvals)
        response = await approvals.client.get(
            "/policies/effective",
            params={"district_id": "fr-paris", "subject_kind": "post"},
            headers=PARIS_MANAGER,
        )
        assert response.status_code == 200, response.text
        effective = response.json()
        assert [
            (s["key"], s["policy_id"], s["policy_district_id"], s["policy_version"])
            for s in effective["steps"]
        ] == [
            ("brand-check", company, None, 1),
            ("regional-ok", hq, "hq", 1),
            ("fr-manager", fr, "fr", 1),
            ("fr-approver", fr, "fr", 1),
        ]
        assert [(p["policy_id"], p["district_id"]) for p in effective["policies"]] == [
            (company, None),
            (hq, "hq"),
            (fr, "fr"),
        ]

        paris = await put_policy(approvals, "fr-paris", [step("paris-legal", "legal")])
        plan = await dry_run(approvals, text="Hello Paris")
        assert keys(plan) == [
            "brand-check",
            "regional-ok",
            "fr-manager",
            "fr-approver",
            "paris-legal",
        ]
        assert [s["reasons"] for s in plan["steps"]] == [
            ["company policy v1"],
            ["hq policy v1"],
            ["fr policy v1"],
            ["fr policy v1"],
            ["fr-paris policy v1"],
        ]
        assert [
            (u["policy_id"], u["district_id"], u["version"]) for u in plan["policy_versions"]
        ] == [
            (company, None, 1),
            (hq, "hq", 1),
            (fr, "fr", 1),
            (paris["id"], "fr-paris", 1),
        ]
        # A sibling inherits hq's and the company's, not France's.
        assert keys(await dry_run(approvals, "de", text="Hallo")) == ["brand-check", "regional-ok"]

    async def test_a_child_cannot_drop_a_parent_step(self, approvals: RunningService) -> None:
        await put_policy(approvals, "fr", [step("fr-manager"), step("legal-review", "legal")])
        # Paris writes only its own step: the parent's are still required before it.
        await put_policy(approvals, "fr-paris", [step("paris-manager")])
        plan = await dry_run(approvals, text="Bonjour")
        assert keys(plan) == ["fr-manager", "legal-review", "paris-manager"]

    async def test_a_child_cannot_redefine_a_parent_step(self, approvals: RunningService) -> None:
        await put_policy(approvals, None, [step("brand-check", "brand")])
        await put_policy(approvals, "fr", [step("legal-review", "legal")])
        for key in ("legal-review", "brand-check"):
            problem = await put_policy(
                approvals,
                "fr-paris",
                [step("paris-manager"), step(key, "legal", quorum={"mode": "all"})],
                expect=422,
            )
            assert "redefines an inherited step" in problem["detail"]
            assert f"Step 2 ('{key}')" in problem["detail"]
            assert problem["step"] == key
        assert (
            await approvals.scalar("SELECT count(*) FROM policies WHERE district_id = 'fr-paris'")
            == 0
        )

    async def test_a_parent_cannot_take_a_key_a_child_uses(self, approvals: RunningService) -> None:
        await put_policy(approvals, "fr-paris", [step("legal-review", "legal")])
        problem = await put_policy(approvals, "fr", [step("legal-review", "legal")], expect=422)
        assert "already used by the policy of 'fr-paris'" in problem["detail"]
        problem = await put_policy(approvals, None, [step("legal-review", "legal")], expect=422)
        assert "already used by the policy of 'fr-paris'" in problem["detail"]
        # The same key in a sibling's policy is another chain: allowed.
        await put_policy(approvals, "de", [step("legal-review", "legal")], headers=DE_MANAGER)

    async def test_replacing_a_policy_may_reuse_its_own_keys(
        self, approvals: RunningService
    ) -> None:
        await put_policy(approvals, "fr", [step("fr-manager")])
        replaced = await put_policy(approvals, "fr", [step("fr-manager", "approver")])
        assert replaced["current_version"] == 2
        assert replaced["steps"][0]["role"] == "approver"


class TestRouting:
    async def test_an_unconditional_step_always_applies(self, approvals: RunningService) -> None:
        await put_policy(approvals, "fr", [step("fr-manager")])
        plan = await dry_run(approvals)
        assert keys(plan) == ["fr-manager"]

    async def test_keywords_match_whole_words_case_insensitively(
        self, approvals: RunningService
    ) -> None:
        await put_policy(
            approvals,
            "fr",
            [
                step("fr-manager"),
                step("legal", "legal", when={"keywords": ["price", "Acme Corp"]}),
            ],
        )
        plan = await dry_run(approvals, text="Our new PRICE list is out!")
        assert keys(plan) == ["fr-manager", "legal"]
        assert plan["steps"][1]["reasons"] == ["fr policy v1", "keyword 'price' in the text"]

        # Part of another word is not the keyword.
        assert keys(await dry_run(approvals, text="A priceless moment")) == ["fr-manager"]
        # The title and the variants are read too.
        plan = await dry_run(approvals, text="Hello", title="Better than acme corp")
        assert plan["steps"][1]["reasons"] == ["fr policy v1", "keyword 'Acme Corp' in the text"]
        plan = await dry_run(
            approvals, text="Hello", variants=[{"platform": "x", "text": "Best price."}]
        )
        assert keys(plan) == ["fr-manager", "legal"]

    async def test_patterns_match_anywhere(self, approvals: RunningService) -> None:
        await put_policy(
            approvals, "fr", [step("legal", "legal", when={"patterns": [r"\d+\s?(€|eur)"]})]
        )
        plan = await dry_run(approvals, text="Only 20 EUR this week")
        assert keys(plan) == ["legal"]
        assert plan["steps"][0]["reasons"] == [
            "fr policy v1",
            "pattern '\\\\d+\\\\s?(€|eur)' in the text",
        ]
        assert keys(await dry_run(approvals, text="Only twenty euros")) == ["district-manager"]

    async def test_platforms_and_campaign_tags(self, approvals: RunningService) -> None:
        await put_policy(
            approvals,
            "fr",
            [
                step("brand", "brand", when={"platforms": ["tiktok"]}),
                step("launch", "approver", when={"campaign_tags": ["launch"]}),
            ],
        )
        plan = await dry_run(approvals, platforms=["instagram", "tiktok"])
        assert keys(plan) == ["brand"]
        assert plan["steps"][0]["reasons"] == ["fr policy v1", "platform tiktok"]
        plan = await dry_run(approvals, variants=[{"platform": "tiktok", "text": "hi"}])
        assert keys(plan) == ["brand"]
        plan = await dry_run(approvals, campaign_tags=["summer", "launch"])
        assert keys(plan) == ["launch"]
        assert plan["steps"][0]["reasons"] == ["fr policy v1", "campaign tag 'launch'"]
        plan = await dry_run(approvals, platforms=["tiktok"], campaign_tags=["launch"])
        assert keys(plan) == ["brand", "launch"]

    async def test_every_match_is_a_reason(self, approvals: RunningService) -> None:
        await put_policy(
            approvals,
            "fr",
            [
                step(
                    "legal",
                    "legal",
                    when={
                        "keywords": ["price", "free"],
                        "patterns": ["win+er"],
                        "platforms": ["tiktok"],
                    },
                )
            ],
        )
        plan = await dry_run(approvals, text="Free winner, best price", platforms=["tiktok"])
        assert plan["steps"][0]["reasons"] == [
            "fr policy v1",
            "keyword 'price' in the text",
            "keyword 'free' in the text",
            "pattern 'win+er' in the text",
            "platform tiktok",
        ]

    async def test_no_applicable_step_means_the_district_manager(
        self, approvals: RunningService
    ) -> None:
        plan = await dry_run(approvals, text="Anything")
        assert plan == {
            "steps": [
                {
                    "key": "district-manager",
                    "name": "District manager",
                    "role": "district_manager",
                    "exact_role": False,
                    "district_id": "fr-paris",
                    "quorum_mode": "any",
                    "quorum_count": 1,
                    "deadline_hours": None,
                    "remind_before_hours": None,
                    "escalate_to_role": None,
                    "escalate_to_district_id": None,
                    "reasons": ["no policy applies: the district's manager decides"],
                    "policy_id": None,
                    "policy_district_id": None,
                    "outside_review": "none",
                }
            ],
            "policy_versions": [],
        }
        # A policy whose only step is conditional, unmatched: the same default, with the
        # policy recorded as consulted.
        fr = await put_policy(approvals, "fr", [step("legal", "legal", when={"keywords": ["x"]})])
        plan = await dry_run(approvals, text="Anything")
        assert keys(plan) == ["district-manager"]
        assert plan["policy_versions"] == [
            {"policy_id": fr["id"], "district_id": "fr", "version": 1}
        ]

    async def test_policies_are_per_subject_kind(self, approvals: RunningService) -> None:
        await put_policy(approvals, "fr", [step("account-check", "brand")], kind="account_request")
        assert keys(await dry_run(approvals)) == ["district-manager"]
        plan = await dry_run(approvals, subject_kind="account_request")
        assert keys(plan) == ["account-check"]

    async def test_where_roles_are_resolved(self, approvals: RunningService) -> None:
        await put_policy(
            approvals,
            "fr",
            [
                step("at-subject", escalate_to={"role": "regional_manager"}, deadline_hours=24),
                step("at-policy", "legal", resolve_at="policy"),
                step(
                    "at-parent",
                    "brand",
                    resolve_at="parent",
                    escalate_to={"role": "legal", "resolve_at": "root"},
                    deadline_hours=24,
                ),
                step("at-root", "regional_manager", resolve_at="root"),
            ],
        )
        await put_policy(approvals, None, [step("company-brand", "brand", resolve_at="policy")])
        plan = await dry_run(approvals)
        resolved = {
            s["key"]: (s["district_id"], s["escalate_to_role"], s["escalate_to_district_id"])
            for s in plan["steps"]
        }
        assert resolved == {
            "company-brand": ("hq", None, None),
            "at-subject": ("fr-paris", "regional_manager", "fr"),
            "at-policy": ("fr", None, None),
            "at-parent": ("fr", "legal", "hq"),
            "at-root": ("hq", None, None),
        }
        # At the top of the tree, a district's parent is itself.
        plan = await dry_run(approvals, "hq")
        assert keys(plan) == ["company-brand"]
        await put_policy(approvals, "hq", [step("hq-parent", "brand", resolve_at="parent")])
        plan = await dry_run(approvals, "hq")
        assert [s["district_id"] for s in plan["steps"]] == ["hq", "hq"]

    async def test_plan_for_an_unknown_district_is_a_problem(
        self, approvals: RunningService
    ) -> None:
        async with approvals.sessions() as session:
            with pytest.raises(UnknownDistrict) as raised:
                await plan_for(session, "atlantis", SubjectFacts(subject_kind="post"))
        assert raised.value.status == 422

    async def test_plan_for_is_what_the_dry_run_answers(self, approvals: RunningService) -> None:
        await three_levels(approvals)
        await put_policy(approvals, "fr", [step("legal", "legal", when={"keywords": ["price"]})])
        async with approvals.sessions() as session:
            plan = await plan_for(
                session,
                "fr-paris",
                SubjectFacts(subject_kind="post", texts=["Price drop"], platforms=["x"]),
            )
        answered = await dry_run(approvals, text="Price drop", platforms=["x"])
        assert plan.model_dump(mode="json") == answered
        assert [s.key for s in plan.steps] == ["brand-check", "regional-ok", "legal"]


class TestQuorum:
    async def test_all_counts_the_roster_where_the_role_is_resolved(
        self, approvals: RunningService
    ) -> None:
        await put_policy(
            approvals,
            "fr",
            [
                step("legal-all", "legal", resolve_at="root", quorum={"mode": "all"}),
                step("brand-all", "brand", quorum={"mode": "all"}),
                step("two-approvers", "approver", quorum={"mode": "count", "count": 2}),
                step("anyone", "district_manager", quorum={"mode": "any"}),
            ],
        )
        response = await approvals.client.put(
            "/rosters/hq/legal", json={"people": ["laura", "leo", "lina", "leo"]}, headers=CENTRAL
        )
        assert response.status_code == 200, response.text
        assert response.json() == {
            "district_id": "hq",
            "role": "legal",
            "people": ["laura", "leo", "lina"],
        }
        # A roster elsewhere does not count for hq's legal step.
        response = await approvals.client.put(
            "/rosters/fr/legal", json={"people": ["louis"]}, headers=FR_MANAGER
        )
        assert response.status_code == 200, response.text
        plan = await dry_run(approvals)
        assert [(s["key"], s["quorum_mode"], s["quorum_count"]) for s in plan["steps"]] == [
            ("legal-all", "all", 3),
            # Nobody on the roster: at least one approval still.
            ("brand-all", "all", 1),
            ("two-approvers", "count", 2),
            ("anyone", "any", 1),
        ]

        response = await approvals.client.put(
            "/rosters/hq/legal", json={"people": ["leo"]}, headers=CENTRAL
        )
        assert response.json()["people"] == ["leo"]
        plan = await dry_run(approvals)
        assert plan["steps"][0]["quorum_count"] == 1


class TestVersions:
    async def test_each_put_is_a_new_version(self, approvals: RunningService) -> None:
        response = await approvals.client.put(
            "/policies/post",
            params={"district_id": "fr"},
            json={"steps": [step("fr-manager")], "description": "First"},
            headers=FR_MANAGER,
        )
        assert response.status_code == 201, response.text
        first = response.json()
        assert first["current_version"] == 1
        assert first["district_id"] == "fr"
        assert first["subject_kind"] == "post"
        assert first["created_by"] == "francois"
        assert first["description"] == "First"

        response = await approvals.client.put(
            "/policies/post",
            params={"district_id": "fr"},
            json={"steps": [step("fr-manager"), step("legal", "legal")], "description": "Legal"},
            headers=as_user("florence", fr="district_manager"),
        )
        assert response.status_code == 200, response.text
        second = response.json()
        assert second["id"] == first["id"]
        assert second["current_version"] == 2
        assert [s["key"] for s in second["steps"]] == ["fr-manager", "legal"]
        assert second["created_by"] == "francois"
        assert second["updated_by"] == "florence"
        assert [(v["version"], v["created_by"], v["description"]) for v in second["versions"]] == [
            (1, "francois", "First"),
            (2, "florence", "Legal"),
        ]

        response = await approvals.client.get(f"/policies/{first['id']}", headers=FR_VIEWER)
        assert response.status_code == 200, response.text
        assert response.json() == second

        response = await approvals.client.get(
            f"/policies/{first['id']}/versions/1", headers=FR_VIEWER
        )
        assert response.status_code == 200, response.text
        old = response.json()
        assert old["version"] == 1
        assert [s["key"] for s in old["steps"]] == ["fr-manager"]
        assert old["description"] == "First"
        response = await approvals.client.get(
            f"/policies/{first['id']}/versions/3", headers=FR_VIEWER
        )
        assert response.status_code == 404
        assert response.json()["type"].endswith("/policy-version-not-found")

        async with approvals.sessions() as session:
            stored = await session.get(PolicyVersion, (uuid.UUID(first["id"]), 1))
        assert stored is not None
        assert [s["key"] for s in stored.steps] == ["fr-manager"]
        plan = await dry_run(approvals)
        assert plan["policy_versions"][0]["version"] == 2
        assert plan["steps"][1]["reasons"] == ["fr policy v2"]


VALID_STEP = step("legal", "legal")


@pytest.mark.parametrize(
    ("steps", "detail"),
    [
        ([], "at least one step"),
        ([step("legal", "lawyer")], "Step 1 ('legal'): unknown role 'lawyer'"),
        (
            [VALID_STEP, step("esc", deadline_hours=4, escalate_to={"role": "boss"})],
            "Step 2 ('esc') escalates to: unknown role 'boss'",
        ),
        ([step("q", quorum={"mode": "count"})], "Step 1 ('q'): a quorum of mode 'count' needs"),
        ([step("q", quorum={"mode": "any", "count": 2})], "only for mode 'count'"),
        ([step("q", quorum={"mode": "all", "count": 2})], "only for mode 'count'"),
        ([step("r", deadline_hours=4, remind_before_hours=4)], "must be less than"),
        ([step("r", deadline_hours=4, remind_before_hours=6)], "must be less than"),
        ([step("r", remind_before_hours=2)], "remind_before_hours needs deadline_hours"),
        ([step("e", escalate_to={"role": "legal"})], "escalate_to needs deadline_hours"),
        ([step("p", when={"patterns": ["price(", "ok"]})], "invalid regular expression 'price('"),
        ([step("w", when={})], "`when` matches nothing"),
        ([step("w", when={"keywords": ["  "]})], "`when` matches nothing"),
        ([VALID_STEP, step("legal", "brand")], "Step 2 ('legal'): the key is used twice"),
        ([step("p", when={"patterns": ["a" * 301]})], None),
        ([step("Bad Key")], None),
        ([step("x", resolve_at="grandparent")], None),
        ([step("x", deadline_hours=0)], None),
        ([{**VALID_STEP, "colour": "red"}], None),
        ([step(f"s{i}") for i in range(51)], None),
    ],
)
async def test_invalid_policies_are_422(
    approvals: RunningService, steps: list[dict[str, Any]], detail: str | None
) -> None:
    problem = await put_policy(approvals, "fr", steps, expect=422)
    if detail is not None:
        assert problem["type"].endswith("/invalid-policy"), problem
        assert detail in problem["detail"]
    else:
        assert problem["type"].endswith("/validation-error"), problem
    assert await approvals.scalar("SELECT count(*) FROM policies") == 0
    assert await approvals.scalar("SELECT count(*) FROM policy_versions") == 0


async def test_an_unknown_subject_kind_is_422(approvals: RunningService) -> None:
    await put_policy(approvals, "fr", [VALID_STEP], kind="story", expect=422)


class TestEscalationCycles:
    async def test_a_self_loop(self, approvals: RunningService) -> None:
        problem = await put_policy(
            approvals,
            "fr",
            [
                step(
                    "legal",
                    "legal",
                    resolve_at="parent",
                    deadline_hours=8,
                    escalate_to={"role": "legal", "resolve_at": "parent"},
                )
            ],
            expect=422,
        )
        assert problem["type"].endswith("/escalation-cycle")
        assert problem["cycle"] == ["legal@parent", "legal@parent"]
        assert "legal@parent -> legal@parent" in problem["detail"]
        # Escalating to the same role one level up is no loop.
        await put_policy(
            approvals,
            "fr",
            [step("legal", "legal", deadline_hours=8, escalate_to={"role": "legal"})],
        )

    async def test_a_cycle_within_a_policy(self, approvals: RunningService) -> None:
        problem = await put_policy(
            approvals,
            "fr",
            [
                step(
                    "a",
                    "legal",
                    deadline_hours=8,
                    escalate_to={"role": "brand", "resolve_at": "root"},
                ),
                step(
                    "b",
                    "brand",
                    resolve_at="root",
                    deadline_hours=8,
                    escalate_to={"role": "approver", "resolve_at": "subject"},
                ),
                step(
                    "c",
                    "approver",
                    deadline_hours=8,
                    escalate_to={"role": "legal", "resolve_at": "subject"},
                ),
            ],
            expect=422,
        )
        assert problem["cycle"] == [
            "legal@subject",
            "brand@root",
            "approver@subject",
            "legal@subject",
        ]

    async def test_a_cycle_across_a_parent_and_a_child(self, approvals: RunningService) -> None:
        to_brand = step(
            "legal",
            "legal",
            deadline_hours=8,
            escalate_to={"role": "brand", "resolve_at": "subject"},
        )
        to_legal = step(
            "brand",
            "brand",
            deadline_hours=8,
            escalate_to={"role": "legal", "resolve_at": "subject"},
        )
        await put_policy(approvals, "fr", [to_brand])
        problem = await put_policy(approvals, "fr-paris", [to_legal], expect=422)
        assert problem["type"].endswith("/escalation-cycle")
        assert "'fr-paris'" in problem["detail"]
        assert problem["cycle"] == ["legal@subject", "brand@subject", "legal@subject"]

        # The other way round: the child first, then the parent closes the loop.
        await put_policy(approvals, "fr", [step("fr-manager")])
        await put_policy(approvals, "fr-paris", [to_legal])
        problem = await put_policy(approvals, "fr", [to_brand], expect=422)
        assert problem["type"].endswith("/escalation-cycle")
        # And company-wide.
        problem = await put_policy(approvals, None, [to_brand], expect=422)
        assert problem["type"].endswith("/escalation-cycle")
        # A sibling's chain is not France's.
        await put_policy(approvals, "de", [to_brand], headers=DE_MANAGER)


class TestPermissions:
    async def test_who_may_write_a_policy(self, approvals: RunningService) -> None:
        for district_id, headers, status in (
            ("fr", FR_WRITER, 403),
            ("fr", FR_VIEWER, 403),
            ("fr", as_user("louis", fr="legal"), 403),
            ("fr", DE_MANAGER, 404),
            ("fr", PARIS_MANAGER, 404),
            ("atlantis", CENTRAL, 404),
            (None, FR_MANAGER, 403),
            (None, as_user("nobody"), 403),
        ):
            await put_policy(approvals, district_id, [VALID_STEP], headers=headers, expect=status)
        assert await approvals.scalar("SELECT count(*) FROM policies") == 0
        await put_policy(approvals, None, [step("brand", "brand")], headers=CENTRAL, expect=201)
        await put_policy(approvals, "fr-paris", [VALID_STEP], headers=FR_MANAGER, expect=201)
        await put_policy(approvals, "fr", [step("x")], headers=CENTRAL, expect=201)

    async def test_who_sees_a_policy(self, approvals: RunningService) -> None:
        company, hq, fr = await three_levels(approvals)
        paris = (await put_policy(approvals, "fr-paris", [VALID_STEP]))["id"]
        de = (await put_policy(approvals, "de", [step("de")], headers=DE_MANAGER))["id"]
        for headers, seen in (
            (CENTRAL, {company, hq, fr, paris, de}),
            (FR_VIEWER, {company, hq, fr, paris}),
            # Paris sees what it inherits.
            (PARIS_MANAGER, {company, hq, fr, paris}),
            (DE_MANAGER, {company, hq, de}),
            (as_user("nobody"), set()),
        ):
            for policy_id in (company, hq, fr, paris, de):
                response = await approvals.client.get(f"/policies/{policy_id}", headers=headers)
                assert response.status_code == (200 if policy_id in seen else 404), response.text
                response = await approvals.client.get(
                    f"/policies/{policy_id}/versions/1", headers=headers
                )
                assert response.status_code == (200 if policy_id in seen else 404)
            response = await approvals.client.get("/policies", headers=headers)
            assert response.status_code == 200, response.text
            assert {p["id"] for p in response.json()["items"]} == seen

        response = await approvals.client.get(
            "/policies", params={"district_id": "fr"}, headers=DE_MANAGER
        )
        assert response.json()["items"] == []
        response = await approvals.client.get(
            "/policies", params={"district_id": "fr"}, headers=PARIS_MANAGER
        )
        assert [p["id"] for p in response.json()["items"]] == [fr]
        response = await approvals.client.get(
            "/policies/effective",
            params={"district_id": "fr", "subject_kind": "post"},
            headers=DE_MANAGER,
        )
        assert response.status_code == 404

    async def test_who_may_retire_a_policy(self, approvals: RunningService) -> None:
        company, _, fr = await three_levels(approvals)
        for policy_id, headers, status in (
            (fr, FR_WRITER, 403),
            (fr, PARIS_MANAGER, 403),
            (fr, DE_MANAGER, 404),
            (company, FR_MANAGER, 403),
        ):
            response = await approvals.client.delete(f"/policies/{policy_id}", headers=headers)
            assert response.status_code == status, response.text
        assert (
            await approvals.scalar("SELECT count(*) FROM policies WHERE retired_at IS NOT NULL")
            == 0
        )
        response = await approvals.client.delete(f"/policies/{company}", headers=CENTRAL)
        assert response.status_code == 204


class TestListing:
    async def test_filters_and_pages(self, approvals: RunningService) -> None:
        company, hq, fr = await three_levels(approvals)
        account = (
            await put_policy(approvals, "fr", [step("acc", "brand")], kind="account_request")
        )["id"]
        response = await approvals.client.get(
            "/policies", params={"subject_kind": "account_request"}, headers=FR_VIEWER
        )
        assert [p["id"] for p in response.json()["items"]] == [account]

        seen: list[str] = []
        cursor = None
        for _ in range(4):
            params: dict[str, Any] = {"limit": 3}
            if cursor:
                params["cursor"] = cursor
            response = await approvals.client.get("/policies", params=params, headers=FR_VIEWER)
            assert response.status_code == 200, response.text
            page = response.json()
            seen += [p["id"] for p in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [company, hq, fr, account]
        response = await approvals.client.get(
            "/policies", params={"cursor": "nonsense"}, headers=FR_VIEWER
        )
        assert response.status_code == 400


class TestRetire:
    async def test_a_retired_policy_adds_no_steps_and_keeps_its_versions(
        self, approvals: RunningService
    ) -> None:
        await put_policy(approvals, None, [step("brand-check", "brand")])
        fr = await put_policy(approvals, "fr", [step("fr-manager")])
        response = await approvals.client.delete(f"/policies/{fr['id']}", headers=FR_MANAGER)
        assert response.status_code == 204, response.text
        assert keys(await dry_run(approvals)) == ["brand-check"]

        response = await approvals.client.get(f"/policies/{fr['id']}", headers=FR_VIEWER)
        assert response.status_code == 200
        assert response.json()["retired_at"] is not None
        response = await approvals.client.get(f"/policies/{fr['id']}/versions/1", headers=FR_VIEWER)
        assert [s["key"] for s in response.json()["steps"]] == ["fr-manager"]
        response = await approvals.client.get(
            "/policies/effective",
            params={"district_id": "fr", "subject_kind": "post"},
            headers=FR_VIEWER,
        )
        assert [s["key"] for s in response.json()["steps"]] == ["brand-check"]
        response = await approvals.client.get("/policies", headers=FR_VIEWER)
        assert [p["district_id"] for p in response.json()["items"]] == [None]
        response = await approvals.client.get(
            "/policies", params={"include_retired": True}, headers=FR_VIEWER
        )
        assert [p["district_id"] for p in response.json()["items"]] == [None, "fr"]
        # Retiring twice changes nothing.
        response = await approvals.client.delete(f"/policies/{fr['id']}", headers=FR_MANAGER)
        assert response.status_code == 204

        # A retired policy's keys are free for the districts below it...
        await put_policy(approvals, "fr-paris", [step("fr-manager")])
        # ...and putting it again brings it back, as a new version.
        problem = await put_policy(approvals, "fr", [step("fr-manager")], expect=422)
        assert "already used by the policy of 'fr-paris'" in problem["detail"]
        back = await put_policy(approvals, "fr", [step("fr-boss")], expect=200)
        assert back["id"] == fr["id"]
        assert back["current_version"] == 2
        assert back["retired_at"] is None
        assert keys(await dry_run(approvals)) == ["brand-check", "fr-boss", "fr-manager"]


class TestDryRun:
    async def test_any_reader_of_the_district(self, approvals: RunningService) -> None:
        await put_policy(approvals, "fr", [step("fr-manager")])
        for headers in (FR_VIEWER, FR_WRITER, PARIS_MANAGER, CENTRAL):
            plan = await dry_run(approvals, "fr-paris", headers=headers)
            assert keys(plan) == ["fr-manager"]
        for district_id, headers in (
            ("fr-paris", DE_MANAGER),
            ("fr", PARIS_MANAGER),
            ("atlantis", CENTRAL),
        ):
            response = await approvals.client.post(
                "/policies/dry-run", json={"district_id": district_id}, headers=headers
            )
            assert response.status_code == 404, response.text
        assert await approvals.scalar("SELECT count(*) FROM requests") == 0

    async def test_bad_input_is_422(self, approvals: RunningService) -> None:
        for body in (
            {"district_id": "fr", "subject_kind": "story"},
            {"district_id": "fr", "text": "x" * 20_001},
            {"district_id": "fr", "variants": [{"text": "no platform"}]},
            {"district_id": "FR"},
            {"district_id": "fr", "colour": "red"},
        ):
            response = await approvals.client.post("/policies/dry-run", json=body, headers=CENTRAL)
            assert response.status_code == 422, body


class TestRoster:
    async def test_managers_keep_it_readers_read_it(self, approvals: RunningService) -> None:
        for district_id, headers, status in (
            ("fr", FR_WRITER, 403),
            ("fr", PARIS_MANAGER, 404),
            ("fr", DE_MANAGER, 404),
            ("atlantis", CENTRAL, 404),
        ):
            response = await approvals.client.put(
                f"/rosters/{district_id}/legal", json={"people": ["louis"]}, headers=headers
            )
            assert response.status_code == status, response.text
        assert await approvals.scalar("SELECT count(*) FROM approver_roster") == 0

        response = await approvals.client.put(
            "/rosters/fr-paris/brand", json={"people": ["bea", "ben"]}, headers=FR_MANAGER
        )
        assert response.status_code == 200, response.text
        response = await approvals.client.put(
            "/rosters/fr-paris/brand", json={"people": ["ben", "bob"]}, headers=PARIS_MANAGER
        )
        assert response.json()["people"] == ["ben", "bob"]
        for headers in (FR_VIEWER, PARIS_MANAGER, CENTRAL):
            response = await approvals.client.get("/rosters/fr-paris/brand", headers=headers)
            assert response.status_code == 200, response.text
            assert response.json() == {
                "district_id": "fr-paris",
                "role": "brand",
                "people": ["ben", "bob"],
            }
        response = await approvals.client.get("/rosters/fr-paris/brand", headers=DE_MANAGER)
        assert response.status_code == 404
        response = await approvals.client.get("/rosters/fr-paris/legal", headers=FR_VIEWER)
        assert response.json()["people"] == []

        response = await approvals.client.put(
            "/rosters/fr-paris/brand", json={"people": []}, headers=PARIS_MANAGER
        )
        assert response.json()["people"] == []
        assert await approvals.scalar("SELECT count(*) FROM approver_roster") == 0

    async def test_only_approver_roles(self, approvals: RunningService) -> None:
        for role in ("contributor", "viewer", "x" * 65):
            response = await approvals.client.put(
                f"/rosters/fr/{role}", json={"people": ["a"]}, headers=FR_MANAGER
            )
            assert response.status_code == 422, response.text
            response = await approvals.client.get(f"/rosters/fr/{role}", headers=FR_MANAGER)
            assert response.status_code == 422, response.text
        response = await approvals.client.put(
            "/rosters/fr/contributor", json={"people": ["a"]}, headers=FR_MANAGER
        )
        assert response.json()["type"].endswith("/unknown-role")
        response = await approvals.client.put(
            "/rosters/fr/legal", json={"people": [""]}, headers=FR_MANAGER
        )
        assert response.status_code == 422


async def test_a_pattern_that_backtracks_for_ages_keeps_its_step(
    approvals: RunningService,
) -> None:
    # Without a time limit this search would not finish: routing would hang.
    await put_policy(
        approvals,
        "fr",
        [{"key": "legal", "name": "Legal", "role": "legal", "when": {"patterns": ["(.*a){20}"]}}],
    )
    plan = await dry_run(approvals, district_id="fr", text="a" * 25 + "b" * 10_000)
    [step] = plan["steps"]
    assert step["key"] == "legal"
    assert any("took too long" in reason for reason in step["reasons"])
    clean = await dry_run(approvals, district_id="fr", text="nothing to see")
    assert keys(clean) == ["district-manager"]


async def test_a_version_beyond_any_that_can_exist_is_422(approvals: RunningService) -> None:
    policy = await put_policy(approvals, "fr", [step("fr-manager")])
    response = await approvals.client.get(
        f"/policies/{policy['id']}/versions/{2**31}", headers=FR_VIEWER
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["loc"] for e in response.json()["errors"]] == [["path", "version"]]
