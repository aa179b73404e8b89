"""Profile URLs give the real cause of a 422 (services/inventory/platforms.py): a URL of a known
platform whose handle breaks the platform's rules is the same `invalid-handle` problem, detail
and pattern, as that platform and handle given apart; a URL on a platform's host that is not a
profile says what the profile URLs look like; a URL of an unknown host is "not a profile URL of
a known platform" with the known hosts. The same holds wherever a profile URL is parsed:
registering an account, requesting one, reporting a found page and the CSV import."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.inventory.factories import FOUND_PAGE_EVIDENCE, FR_MANAGER, HQ_ADMIN
from tests.kit import RunningService

pytestmark = pytest.mark.asyncio

# (platform, handle, the profile URL with that handle): each handle breaks its platform's rules.
INVALID_HANDLES = [
    ("x", "far_too_long_for_x_handles", "https://x.com/far_too_long_for_x_handles"),
    ("facebook", "abc", "https://www.facebook.com/abc"),
    ("instagram", "bad!name", "https://www.instagram.com/bad!name/"),
    ("tiktok", "a", "https://www.tiktok.com/@a"),
    ("mastodon", "bad!@mastodon.social", "https://mastodon.social/@bad!"),
]


async def register(inventory: RunningService, **body: Any) -> httpx.Response:
    return await inventory.client.post(
        "/accounts", json={"district_id": "fr", **body}, headers=HQ_ADMIN
    )


async def request_account(inventory: RunningService, **body: Any) -> httpx.Response:
    return await inventory.client.post(
        "/account-requests",
        json={"district_id": "fr", "purpose": "Local news", **body},
        headers=HQ_ADMIN,
    )


async def report(inventory: RunningService, profile_url: str) -> httpx.Response:
    return await inventory.client.post(
        "/found-pages",
        json={
            "profile_url": profile_url,
            "district_id": "fr",
            "classification": "rogue",
            "evidence": FOUND_PAGE_EVIDENCE,
        },
        headers=FR_MANAGER,
    )


def problem(response: httpx.Response, slug: str) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == f"https://chorus.dev/problems/{slug}", body
    return body


def same_problem(by_url: dict[str, Any], by_handle: dict[str, Any]) -> None:
    for member in ("type", "title", "status", "platform", "pattern"):
        assert by_url[member] == by_handle[member], member
    # The handle in the URL path is the handle given: the detail is the same word for word.
    assert by_url["detail"] == by_handle["detail"]


@pytest.mark.parametrize(("platform", "handle", "url"), INVALID_HANDLES)
async def test_registering_by_url_gives_the_invalid_handle_as_platform_and_handle_do(
    inventory: RunningService, platform: str, handle: str, url: str
) -> None:
    by_handle = problem(
        await register(inventory, platform=platform, handle=handle), "invalid-handle"
    )
    by_url = problem(await register(inventory, profile_url=url), "invalid-handle")
    same_problem(by_url, by_handle)
    assert by_url["platform"] == platform
    assert by_url["pattern"] in by_url["detail"]
    # A platform given with the URL changes nothing.
    with_platform = problem(
        await register(inventory, platform=platform, profile_url=url), "invalid-handle"
    )
    assert with_platform == by_url


async def test_the_detail_names_the_handle_and_the_pattern(inventory: RunningService) -> None:
    body = problem(
        await register(inventory, profile_url="https://x.com/bad-dash"), "invalid-handle"
    )
    assert body["detail"] == "'bad-dash' is not a valid X handle: it must match [A-Za-z0-9_]{1,15}."
    assert body["pattern"] == "[A-Za-z0-9_]{1,15}"
    assert (await inventory.client.get("/accounts", headers=HQ_ADMIN)).json()["items"] == []


async def test_an_unknown_host_is_not_a_profile_url_of_a_known_platform(
    inventory: RunningService,
) -> None:
    body = problem(
        await register(inventory, profile_url="https://example.com/someone"),
        "invalid-profile-url",
    )
    assert "not a profile URL of a known platform" in body["detail"]
    assert {"x.com", "instagram.com", "facebook.com", "bsky.app"} <= set(body["known_hosts"])
    assert "x.com" in body["detail"]
    assert "Mastodon on any host (https://{domain}/@{user})" in body["detail"]


@pytest.mark.parametrize(
    ("url", "platform", "looks_like"),
    [
        ("https://x.com/orange/status/1", "x", "https://x.com/{handle}"),
        ("https://twitter.com/orange/likes", "x", "https://x.com/{handle}"),
        # Not a Mastodon profile on the server x.com: x.com is X's.
        ("https://x.com/@orange", "x", "https://x.com/{handle}"),
        ("https://www.youtube.com/watch?v=abc", "youtube", "https://www.youtube.com/@{handle}"),
        (
            "https://www.linkedin.com/in/someone",
            "linkedin",
            "https://www.linkedin.com/company/{handle}/",
        ),
    ],
)
async def test_a_known_host_that_is_not_a_profile_says_what_a_profile_url_looks_like(
    inventory: RunningService, url: str, platform: str, looks_like: str
) -> None:
    body = problem(await register(inventory, profile_url=url), "invalid-profile-url")
    assert body["platform"] == platform
    assert "not a profile URL" in body["detail"]
    assert looks_like in body["detail"]


async def test_valid_profile_urls_still_register(inventory: RunningService) -> None:
    for url, handle in (
        ("https://x.com/orange_fr", "orange_fr"),
        ("https://mastodon.social/@orange", "orange@mastodon.social"),
        ("https://www.youtube.com/@orange.fr", "orange.fr"),
    ):
        response = await register(inventory, profile_url=url)
        assert response.status_code == 201, response.text
        assert response.json()["handle"] == handle


async def test_requesting_by_url_gives_the_real_cause_both_ways(
    inventory: RunningService,
) -> None:
    by_handle = problem(
        await request_account(inventory, platform="x", handle="far_too_long_for_x_handles"),
        "invalid-handle",
    )
    by_url = problem(
        await request_account(inventory, profile_url="https://x.com/far_too_long_for_x_handles"),
        "invalid-handle",
    )
    same_problem(by_url, by_handle)
    unknown = problem(
        await request_account(inventory, profile_url="https://example.com/someone"),
        "invalid-profile-url",
    )
    assert "not a profile URL of a known platform" in unknown["detail"]
    assert "x.com" in unknown["known_hosts"]


async def test_reporting_a_found_page_gives_the_real_cause(inventory: RunningService) -> None:
    by_handle = problem(
        await register(inventory, platform="facebook", handle="abc"), "invalid-handle"
    )
    by_url = problem(await report(inventory, "https://www.facebook.com/abc"), "invalid-handle")
    same_problem(by_url, by_handle)
    elsewhere = problem(
        await report(inventory, "https://www.facebook.com/groups/orange/posts"),
        "invalid-profile-url",
    )
    assert elsewhere["platform"] == "facebook"
    unknown = problem(await report(inventory, "https://example.com/fake"), "invalid-profile-url")
    assert "not a profile URL of a known platform" in unknown["detail"]
    assert (await inventory.client.get("/takedowns", headers=HQ_ADMIN)).json()["items"] == []


async def test_an_import_row_gives_the_real_cause_in_its_message(
    inventory: RunningService,
) -> None:
    body = (
        "platform,handle,display_name,district_id,profile_url\r\n"
        ",,,fr,https://x.com/far_too_long_for_x_handles\r\n"  # line 2: the handle breaks X's rules
        "x,far_too_long_for_x_handles,,fr,\r\n"  # 3: the same, by platform and handle
        ",,,fr,https://example.com/someone\r\n"  # 4: an unknown host
        ",,,fr,https://x.com/orange/status/1\r\n"  # 5: X, but not a profile
    )
    response = await inventory.client.post(
        "/accounts/import",
        content=body.encode(),
        headers={**HQ_ADMIN, "content-type": "text/csv"},
    )
    assert response.status_code == 422, response.text
    errors = {e["line"]: e for e in response.json()["errors"]}
    assert (errors[2]["column"], errors[3]["column"]) == ("profile_url", "handle")
    assert errors[2]["message"] == errors[3]["message"]
    assert "[A-Za-z0-9_]{1,15}" in errors[2]["message"]
    assert errors[4]["column"] == "profile_url"
    assert "not a profile URL of a known platform" in errors[4]["message"]
    assert "x.com" in errors[4]["message"]
    assert errors[5]["column"] == "profile_url"
    assert "https://x.com/{handle}" in errors[5]["message"]
