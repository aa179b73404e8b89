"""One source per vocabulary: the statuses, kinds and roles the API accepts are what the
database stores, and accounts move between statuses as the inventory's users state the rules
(written out here, not read from the service's own table)."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path

import pytest

from services.inventory.vocabulary import (
    AccountStatus,
    DistrictKind,
    OwnerRole,
    RequestStatus,
    TakedownStatus,
)
from tests.inventory.factories import HQ_ADMIN, register_account, set_status
from tests.kit import RunningService

README = Path(__file__).parents[2] / "services" / "inventory" / "README.md"

# The account lifecycle as the central team states it: where an account of each status may go.
ACCOUNT_RULES = {
    "pending": ["archived", "duplicate", "fan", "official", "rogue", "unofficial"],
    "official": ["archived", "dormant", "duplicate", "orphaned"],
    "unofficial": ["archived", "duplicate", "fan", "official", "rogue"],
    "rogue": ["archived", "official", "unofficial"],
    "fan": ["archived", "official", "rogue", "unofficial"],
    "duplicate": ["archived", "unofficial"],
    "dormant": ["archived", "official", "orphaned"],
    "orphaned": ["archived", "dormant", "official"],
    "archived": ["pending"],
}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("table", "constraint", "vocabulary"),
    [
        ("districts", "ck_districts_kind", DistrictKind),
        ("accounts", "ck_accounts_status", AccountStatus),
        ("account_owners", "ck_account_owners_role", OwnerRole),
        ("account_requests", "ck_account_requests_status", RequestStatus),
        ("takedown_cases", "ck_takedown_cases_status", TakedownStatus),
    ],
)
async def test_the_migrated_database_stores_exactly_each_vocabulary(
    inventory: RunningService, table: str, constraint: str, vocabulary: type[StrEnum]
) -> None:
    definition = await inventory.scalar(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = CAST(:table AS regclass) AND conname = :name",
        table=table,
        name=constraint,
    )
    assert definition is not None
    stored = set(re.findall(r"'([a-z_]+)'", definition))
    assert stored == {member.value for member in vocabulary}


@pytest.mark.asyncio
async def test_accounts_move_between_statuses_as_the_rules_say(inventory: RunningService) -> None:
    """An account in each status is asked to stay where it is (never a transition): the 422
    lists where it may go, which must be what the rules say."""
    accounts = {}
    original = await register_account(
        inventory, platform="x", handle="r_original", district_id="fr"
    )
    for status in ACCOUNT_RULES:
        account = await register_account(
            inventory, platform="x", handle=f"r_{status}", district_id="fr"
        )
        path = {
            "pending": [],
            "official": ["official"],
            "unofficial": ["unofficial"],
            "rogue": ["rogue"],
            "fan": ["fan"],
            "duplicate": ["duplicate"],
            "dormant": ["official", "dormant"],
            "orphaned": ["official", "orphaned"],
            "archived": ["archived"],
        }[status]
        for step in path:
            extra = {"duplicate_of": original["id"]} if step == "duplicate" else {}
            account = await set_status(inventory, account, status=step, **extra)
        assert account["status"] == status
        accounts[status] = account
    for status, allowed in ACCOUNT_RULES.items():
        response = await inventory.client.post(
            f"/accounts/{accounts[status]['id']}/status", json={"status": status}, headers=HQ_ADMIN
        )
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["type"].endswith("/illegal-status-transition")
        assert (body["current"], body["allowed"]) == (status, allowed)


def glossary() -> dict[str, set[str]]:
    """The README's table of statuses: for each kind of object, the status words it defines."""
    text = README.read_text()
    table = text.split("## Statuses", 1)[1].split("\n## ", 1)[0]
    words: dict[str, set[str]] = {}
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        words.setdefault(cells[1], set()).update(re.findall(r"`([a-z_]+)`", cells[0]))
    return words


@pytest.mark.parametrize(
    ("of", "vocabulary"),
    [
        ("account", AccountStatus),
        ("account request", RequestStatus),
        ("takedown case", TakedownStatus),
    ],
)
def test_the_readme_glossary_defines_every_status_and_no_other(
    of: str, vocabulary: type[StrEnum]
) -> None:
    assert glossary()[of] == {member.value for member in vocabulary}


def test_pending_is_only_an_account_status_and_open_never_is() -> None:
    assert AccountStatus.PENDING.value not in {*RequestStatus, *TakedownStatus}
    assert "open" not in set(AccountStatus)
    assert RequestStatus.OPEN == TakedownStatus.OPEN == "open"
    by_word: dict[str, set[str]] = {}
    for of, words in glossary().items():
        for word in words:
            by_word.setdefault(word, set()).add(of)
    assert by_word["pending"] == {"account"}
    assert by_word["open"] == {"account request", "takedown case"}
