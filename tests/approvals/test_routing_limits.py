"""Routing cannot be turned against the service: patterns that would blow up when compiled are
refused, a policy holds a bounded number of patterns and keywords, a plan has one time budget
for all its conditions, and matching leaves the event loop free."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.approvals.policies import matching
from services.approvals.policies.schemas import Condition, SubjectFacts
from tests.approvals.factories import FR_MANAGER, FR_VIEWER
from tests.kit import RunningService

BACKTRACKING = "(.*a){20}"  # nested repetition: a search on "aaa…b" takes ages


def legal_when(key: str, **when: Any) -> dict[str, Any]:
    return {"key": key, "name": key.capitalize(), "role": "legal", "when": when}


async def put(approvals: RunningService, steps: list[dict[str, Any]]) -> Any:
    return await approvals.client.put(
        "/policies/post", params={"district_id": "fr"}, json={"steps": steps}, headers=FR_MANAGER
    )


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "pattern",
    [
        # Compiling this one took every byte of memory the process could have.
        "(a{65535}){65535}",
        "(?:a{1000}){1000}",
        "((a{100}){100}){100}",
        "x{20000}",
    ],
)
async def test_a_pattern_that_expands_when_compiled_is_422(
    approvals: RunningService, pattern: str
) -> None:
    response = await put(approvals, [legal_when("legal", patterns=[pattern])])
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"].endswith("/invalid-policy")
    assert "repeats too much" in problem["detail"]
    assert await approvals.scalar("SELECT count(*) FROM policies") == 0


@pytest.mark.asyncio
async def test_modest_repetitions_are_accepted(approvals: RunningService) -> None:
    response = await put(
        approvals, [legal_when("legal", patterns=[r"\d{1,3}(?:[ .]\d{3}){0,4} ?€", "[{]x{2}"])]
    )
    assert response.status_code == 201, response.text


@pytest.mark.asyncio
async def test_a_policy_holds_a_bounded_number_of_patterns_and_keywords(
    approvals: RunningService,
) -> None:
    # Each step is within its own limits (50 patterns, 200 keywords); the policy is not.
    patterns = [legal_when(f"p{i}", patterns=[f"word{i}-{j}" for j in range(50)]) for i in range(3)]
    response = await put(approvals, patterns)
    assert response.status_code == 422, response.text
    assert "150 patterns in one policy" in response.json()["detail"]
    keywords = [legal_when(f"k{i}", keywords=[f"kw{i}-{j}" for j in range(200)]) for i in range(3)]
    response = await put(approvals, keywords)
    assert response.status_code == 422, response.text
    assert "600 keywords in one policy" in response.json()["detail"]
    assert await approvals.scalar("SELECT count(*) FROM policy_versions") == 0


@pytest.mark.asyncio
async def test_a_plan_has_one_budget_and_keeps_the_steps_it_could_not_check(
    approvals: RunningService,
) -> None:
    # Two steps of 50 patterns that each run out of time: without a budget for the whole
    # plan, one dry run took 100 x 50 ms; with it, the rest of the plan is not searched.
    steps = [
        legal_when(f"legal{i}", patterns=[f"{BACKTRACKING}{j}" for j in range(50)])
        for i in range(2)
    ]
    assert (await put(approvals, steps)).status_code == 201
    response = await approvals.client.post(
        "/policies/dry-run",
        json={"district_id": "fr", "text": "a" * 25 + "b" * 10_000},
        headers=FR_VIEWER,
    )
    assert response.status_code == 200, response.text
    plan = response.json()
    assert [s["key"] for s in plan["steps"]] == ["legal0", "legal1"]
    reasons = [reason for s in plan["steps"] for reason in s["reasons"]]
    assert matching.OUT_OF_TIME in reasons
    # The budget, not each pattern's own limit, ended the search: far fewer than 100
    # patterns were tried.
    timed_out = [r for r in reasons if "took too long" in r]
    assert 1 <= len(timed_out) < 20


@pytest.mark.asyncio
async def test_a_text_without_matches_still_routes_past_the_conditional_steps(
    approvals: RunningService,
) -> None:
    steps = [legal_when("legal", patterns=[BACKTRACKING], keywords=["lawsuit"])]
    assert (await put(approvals, steps)).status_code == 201
    response = await approvals.client.post(
        "/policies/dry-run", json={"district_id": "fr", "text": "nothing here"}, headers=FR_VIEWER
    )
    assert [s["key"] for s in response.json()["steps"]] == ["district-manager"]


@pytest.mark.asyncio
async def test_routing_leaves_the_event_loop_free() -> None:
    conditions = [Condition(patterns=[BACKTRACKING]) for _ in range(20)]
    facts = SubjectFacts(subject_kind="post", texts=["a" * 25 + "b" * 10_000])
    ticks = 0
    stop = asyncio.Event()

    async def tick() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(tick())
    ticks_before = ticks
    reasons = await matching.route(conditions, facts)
    stop.set()
    await ticker
    # Routing on the loop itself would have let the ticker run not once meanwhile.
    assert ticks > ticks_before
    assert all(r for r in reasons), reasons
    assert matching.OUT_OF_TIME in [r for rs in reasons for r in rs]


def test_expansion_counts_nested_repetitions() -> None:
    assert matching.expansion("abc") == 3
    assert matching.expansion("a{10}") == 10
    assert matching.expansion("(?:ab){10}") > 20
    assert matching.expansion("(?:a{100}){100}") >= 10_000
    assert matching.expansion(r"\{a{5}\}") < 10  # escaped braces repeat nothing
    assert matching.expansion("[{]{3}") == 3  # a class is one atom
    assert matching.expansion("a*b+c?") == 6
