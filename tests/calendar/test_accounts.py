"""GET /accounts: the accounts a caller may target, from the inventory's read model, in the
districts they read, by platform and handle, paged by a keyset cursor."""

from __future__ import annotations

from typing import Any

import pytest

from tests.calendar.factories import DE_MANAGER, FR_WRITER, Accounts
from tests.kit import RunningService

pytestmark = pytest.mark.asyncio


async def every_page(
    calendar: RunningService, headers: dict[str, str], **params: Any
) -> list[list[tuple[str, str]]]:
    """The (platform, handle) of each page, following next_cursor to the end."""
    pages: list[list[tuple[str, str]]] = []
    cursor: str | None = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await calendar.client.get("/accounts", params=query, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append([(a["platform"], a["handle"]) for a in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


async def test_a_writer_pages_through_the_accounts_of_their_subtree(
    calendar: RunningService, accounts: Accounts
) -> None:
    pages = await every_page(calendar, FR_WRITER, status="any", limit=2)
    assert pages == [
        [("instagram", "chorus.fr"), ("x", "chorus_fr")],
        [("x", "chorus_paris"), ("x", "fr_fake")],
        [("x", "fr_old")],
    ]


async def test_only_official_accounts_are_listed_by_default(
    calendar: RunningService, accounts: Accounts
) -> None:
    pages = await every_page(calendar, FR_WRITER)
    assert pages == [[("instagram", "chorus.fr"), ("x", "chorus_fr"), ("x", "chorus_paris")]]


async def test_filters_by_district_subtree_and_platform(
    calendar: RunningService, accounts: Accounts
) -> None:
    assert await every_page(calendar, FR_WRITER, district_id="fr-paris") == [
        [("x", "chorus_paris")]
    ]
    assert await every_page(calendar, FR_WRITER, platform="instagram") == [
        [("instagram", "chorus.fr")]
    ]


async def test_another_districts_accounts_are_not_listed(
    calendar: RunningService, accounts: Accounts
) -> None:
    assert await every_page(calendar, DE_MANAGER, status="any") == [[("x", "chorus_de")]]
    response = await calendar.client.get(
        "/accounts", params={"district_id": "de"}, headers=FR_WRITER
    )
    assert response.status_code == 404
    assert response.json()["type"].endswith("/district-not-found")


async def test_a_cursor_this_api_did_not_issue_is_400(
    calendar: RunningService, accounts: Accounts
) -> None:
    response = await calendar.client.get(
        "/accounts", params={"cursor": "WyJ4Il0"}, headers=FR_WRITER
    )
    assert response.status_code == 400
    assert response.json()["type"].endswith("/invalid-cursor")
