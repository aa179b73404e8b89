"""Routing: which conditional steps a subject needs, and why.

Keywords and regular expressions are written by managers and checked against texts of up to
tens of thousands of characters, on every submission and on every dry run. Invariants:

- Routing never runs on the event loop: a plan's conditions are matched in a worker thread,
  and regular expressions release the GIL while they search (``concurrent=True``), so the
  service keeps answering and its consumers keep consuming while a plan is routed. At most
  ``ROUTING_SLOTS`` plans are matched at once; the others wait their turn.
- A plan has one time budget (``PLAN_BUDGET_SECONDS``) for all its conditions, and each search
  is also cut off at ``PATTERN_TIMEOUT_SECONDS``. A condition that is cut off, or that the
  budget no longer reaches, keeps its step, with the reason: an unneeded review is the safe
  mistake, a skipped one is not.
- A pattern is accepted only if compiling it stays small: ``regex`` expands bounded
  repetitions, so ``(a{65535}){65535}`` would take the process's memory at compile time. The
  product of nested repetition counts is capped (``MAX_PATTERN_EXPANSION``) before anything
  compiles it. The number of patterns and keywords of one policy is capped as well
  (``MAX_PATTERNS_PER_POLICY``, ``MAX_KEYWORDS_PER_POLICY``), so a chain of policies holds a
  bounded amount of routing work.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import regex

from services.approvals.policies.schemas import Condition, SubjectFacts

PATTERN_TIMEOUT_SECONDS = 0.05
PLAN_BUDGET_SECONDS = 0.25
ROUTING_SLOTS = 2
MAX_PATTERN_EXPANSION = 10_000
MAX_PATTERNS_PER_POLICY = 100
MAX_KEYWORDS_PER_POLICY = 500

OUT_OF_TIME = "routing ran out of time before this condition was checked: the step is kept"

_BOUNDS = regex.compile(r"\{(\d*)(?:,(\d*))?\}")
_slots = asyncio.Semaphore(ROUTING_SLOTS)


# --- Checking patterns before they are stored -----------------------------------------------


def expansion(pattern: str) -> int:
    """An upper bound of the number of nodes ``regex`` builds for `pattern`: each atom counts
    one, a bounded repetition multiplies what it repeats. Alternatives are added up rather
    than maxed, and unbounded repetitions (``*``, ``+``) count once, as the engine loops over
    them instead of copying."""
    levels = [0]  # the weight of the sequence read so far, per open group
    last = 0  # the weight of the last atom: what a following repetition applies to
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            levels[-1] += 1
            last = 1
            i += 2
        elif char == "[":
            i = _class_end(pattern, i) + 1
            levels[-1] += 1
            last = 1
        elif char == "(":
            levels.append(0)
            i += 1
        elif char == ")" and len(levels) > 1:
            last = levels.pop()
            levels[-1] += last
            i += 1
        elif char == "{" and (bounds := _BOUNDS.match(pattern, i)) is not None:
            counts = [int(g) for g in bounds.groups() if g]
            times = max(counts, default=1)
            levels[-1] += last * max(times - 1, 0)
            last *= max(times, 1)
            i = bounds.end()
        else:
            levels[-1] += 1
            last = 1
            i += 1
    return sum(levels)


def _class_end(pattern: str, start: int) -> int:
    """The index of the ``]`` closing the character class opened at `start` (or the end)."""
    i = start + 1
    if i < len(pattern) and pattern[i] == "^":
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        i += 1  # a leading ] is a literal
    while i < len(pattern):
        if pattern[i] == "\\":
            i += 2
            continue
        if pattern[i] == "]":
            return i
        i += 1
    return len(pattern)


def pattern_problem(pattern: str) -> str | None:
    """Why `pattern` cannot be stored, or None. Compiles it only once it is known to be small."""
    size = expansion(pattern)
    if size > MAX_PATTERN_EXPANSION:
        return (
            f"pattern {pattern!r} repeats too much: its repetitions expand to about {size:,}"
            f" nodes (at most {MAX_PATTERN_EXPANSION:,}); use * or + instead of large counts"
        )
    try:
        regex.compile(pattern, regex.IGNORECASE)
    except regex.error as exc:
        return f"invalid regular expression {pattern!r} ({exc})"
    return None


def routing_load_problem(conditions: Sequence[Condition]) -> str | None:
    """Why the conditions of one policy hold too much routing work, or None."""
    patterns = sum(len(c.patterns) for c in conditions)
    if patterns > MAX_PATTERNS_PER_POLICY:
        return f"{patterns} patterns in one policy (at most {MAX_PATTERNS_PER_POLICY})"
    keywords = sum(len(c.keywords) for c in conditions)
    if keywords > MAX_KEYWORDS_PER_POLICY:
        return f"{keywords} keywords in one policy (at most {MAX_KEYWORDS_PER_POLICY})"
    return None


# --- Matching a subject ---------------------------------------------------------------------


@dataclass
class _Budget:
    deadline: float

    def left(self) -> float:
        return self.deadline - time.monotonic()


async def route(conditions: Sequence[Condition], facts: SubjectFacts) -> list[list[str]]:
    """For each condition, why it matches the subject (empty: it does not), within the plan's
    budget and off the event loop."""
    if not conditions:
        return []
    async with _slots:
        return await asyncio.to_thread(_route_all, conditions, facts)


def _route_all(conditions: Sequence[Condition], facts: SubjectFacts) -> list[list[str]]:
    budget = _Budget(time.monotonic() + PLAN_BUDGET_SECONDS)
    folded = [t.casefold() for t in facts.texts]
    return [_reasons(condition, facts, folded, budget) for condition in conditions]


def _reasons(when: Condition, facts: SubjectFacts, folded: list[str], budget: _Budget) -> list[str]:
    reasons: list[str] = []
    for keyword in when.keywords:
        matched = _keyword_matches(keyword.strip(), facts.texts, folded, budget)
        if matched is None:
            return [*reasons, OUT_OF_TIME]
        if matched:
            reasons.append(f"keyword {keyword.strip()!r} in the text")
    for pattern in when.patterns:
        if budget.left() <= 0:
            return [*reasons, OUT_OF_TIME]
        found = _pattern_matches(pattern, facts.texts, budget)
        if found is None:
            reasons.append(f"pattern {pattern!r} took too long to check: the step is kept")
        elif found:
            reasons.append(f"pattern {pattern!r} in the text")
    platforms = {p.casefold() for p in facts.platforms}
    reasons += [f"platform {p}" for p in when.platforms if p.casefold() in platforms]
    tags = {t.casefold() for t in facts.campaign_tags}
    reasons += [f"campaign tag {t!r}" for t in when.campaign_tags if t.casefold() in tags]
    return reasons


def _keyword_matches(
    keyword: str, texts: list[str], folded: list[str], budget: _Budget
) -> bool | None:
    """Whether the keyword is in a text as a whole word; None when the budget is spent.
    Lookarounds rather than \\b, so keywords that start or end with a symbol ("$", "c++")
    still match as whole words. A plain substring test first spares the search in most
    texts."""
    if not keyword:
        return False
    needle = keyword.casefold()
    word = rf"(?<!\w){regex.escape(keyword)}(?!\w)"
    for text, low in zip(texts, folded, strict=True):
        if needle not in low:
            continue
        found = _search(word, text, budget.left())
        if found is not False:
            return found
    return False


def _pattern_matches(pattern: str, texts: list[str], budget: _Budget) -> bool | None:
    """Whether the pattern is found in any text; None when it ran out of time (its own limit
    or the plan's budget)."""
    for text in texts:
        found = _search(pattern, text, min(PATTERN_TIMEOUT_SECONDS, budget.left()))
        if found is not False:
            return found
    return False


def _search(pattern: str, text: str, timeout: float) -> bool | None:
    """Whether `pattern` is found in `text` (case-insensitive, releasing the GIL); None when
    the search ran out of `timeout` seconds, or had none left to start with. Anything but
    False is the answer for all the texts: a match, or no time to look further."""
    if timeout <= 0:
        return None
    try:
        found = regex.search(pattern, text, regex.IGNORECASE, timeout=timeout, concurrent=True)
    except TimeoutError:
        return None
    return found is not None
