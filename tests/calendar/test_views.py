"""The range view (GET /posts): what a month shows to whom, every filter, keyset pagination
without gaps or repeats, and the ranges it refuses."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.calendar.calendars.service import calendar_for
from services.calendar.views.schemas import PostSummary
from tests.calendar.factories import (
    CENTRAL,
    DE_MANAGER,
    FR_MANAGER,
    FR_VIEWER,
    PARIS_WRITER,
    Accounts,
    create_campaign,
    create_post,
)
from tests.kit import RunningService, as_user

pytestmark = pytest.mark.asyncio

MAY = datetime(2027, 5, 1, tzinfo=UTC)
MONTH = {"from": "2027-05-01T00:00:00+00:00", "to": "2027-06-01T00:00:00+00:00"}


async def month(
    calendar: RunningService, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    response = await calendar.client.get("/posts", params={**MONTH, **params}, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["next_cursor"] is None
    items: list[dict[str, Any]] = body["items"]
    return items


def ids(items: list[dict[str, Any]]) -> list[uuid.UUID]:
    return [uuid.UUID(item["id"]) for item in items]


def day(n: int, hour: int = 9) -> datetime:
    return MAY + timedelta(days=n - 1, hours=hour)


# A post's statuses, as the calendar's users name them.
POST_STATUSES = {
    "draft",
    "in_review",
    "changes_requested",
    "approved",
    "scheduled",
    "published",
    "publish_failed",
    "rejected",
    "cancelled",
}


async def test_the_summary_knows_every_post_status() -> None:
    schema = PostSummary.model_json_schema()
    status = schema["$defs"]["PostStatus"]
    assert schema["properties"]["status"] == {"$ref": "#/$defs/PostStatus"}
    assert set(status["enum"]) == POST_STATUSES


async def test_a_month_shows_the_callers_districts_and_the_company_posts_in_time_order(
    calendar: RunningService, accounts: Accounts
) -> None:
    first = await create_post(calendar, "fr", MAY, title="first instant")
    paris = await create_post(calendar, "fr-paris", day(3))
    de = await create_post(calendar, "de", day(5))
    fr = await create_post(
        calendar,
        "fr",
        day(10),
        title="Spring launch",
        status="scheduled",
        account_ids=[accounts.fr_x, accounts.fr_instagram],
        assignee="fanny",
        due_at=day(8),
        version=4,
    )
    company = await create_post(calendar, None, day(20))
    await create_post(calendar, "fr", MAY - timedelta(seconds=1))  # before the range
    await create_post(calendar, "fr", MAY + timedelta(days=31))  # `to` is exclusive
    await create_post(calendar, "fr", None)  # no slot yet: on no range

    assert ids(await month(calendar, FR_MANAGER)) == [first, paris, fr, company]
    assert ids(await month(calendar, DE_MANAGER)) == [de, company]
    assert ids(await month(calendar, PARIS_WRITER)) == [paris, company]
    assert ids(await month(calendar, CENTRAL)) == [first, paris, de, fr, company]
    assert await month(calendar, as_user("nobody")) == []
    # The same instants written with another offset.
    shifted = {"from": "2027-05-01T02:00:00+02:00", "to": "2027-06-01T02:00:00+02:00"}
    assert ids(await month(calendar, FR_MANAGER, **shifted)) == [first, paris, fr, company]

    summary = next(item for item in await month(calendar, FR_VIEWER) if item["id"] == str(fr))
    async with calendar.sessions() as session:
        calendar_id = (await calendar_for(session, "fr")).id
    assert summary == {
        "id": str(fr),
        "calendar_id": str(calendar_id),
        "district_id": "fr",
        "title": "Spring launch",
        "status": "scheduled",
        "publish_at": "2027-05-10T09:00:00Z",
        "timezone": "Europe/Paris",
        "account_ids": sorted([str(accounts.fr_x), str(accounts.fr_instagram)]),
        "campaign_id": None,
        "author": "fanny",
        "assignee": "fanny",
        "due_at": "2027-05-08T09:00:00Z",
        "version": 4,
    }


async def test_each_filter(calendar: RunningService, accounts: Accounts) -> None:
    campaign = await create_campaign(calendar, "fr")
    fr_draft = await create_post(calendar, "fr", day(2), account_ids=[accounts.fr_x])
    fr_review = await create_post(
        calendar,
        "fr",
        day(4),
        status="in_review",
        account_ids=[accounts.fr_x, accounts.fr_instagram],
        campaign_id=campaign,
        assignee="fanny",
    )
    paris = await create_post(
        calendar,
        "fr-paris",
        day(6),
        status="published",
        account_ids=[accounts.paris_x],
        campaign_id=campaign,
        assignee="pierre",
    )
    company = await create_post(
        calendar, None, day(8), status="published", account_ids=[accounts.de_x]
    )
    de = await create_post(calendar, "de", day(9), account_ids=[accounts.de_x], assignee="fanny")

    async with calendar.sessions() as session:
        fr_calendar = (await calendar_for(session, "fr")).id
        company_calendar = (await calendar_for(session, None)).id

    assert ids(await month(calendar, FR_MANAGER, district_id="fr")) == [fr_draft, fr_review, paris]
    assert ids(await month(calendar, FR_MANAGER, district_id="fr-paris")) == [paris]
    assert ids(await month(calendar, CENTRAL, district_id="de")) == [de]
    assert ids(await month(calendar, FR_MANAGER, calendar_id=str(fr_calendar))) == [
        fr_draft,
        fr_review,
    ]
    assert ids(await month(calendar, DE_MANAGER, calendar_id=str(company_calendar))) == [company]
    assert ids(await month(calendar, FR_MANAGER, account_id=str(accounts.fr_instagram))) == [
        fr_review
    ]
    both = {"account_id": [str(accounts.fr_instagram), str(accounts.paris_x)]}
    assert ids(await month(calendar, FR_MANAGER, **both)) == [fr_review, paris]
    # A company-wide post on de's account is visible to everyone; de's own post is not.
    assert ids(await month(calendar, FR_MANAGER, account_id=str(accounts.de_x))) == [company]
    assert ids(await month(calendar, FR_MANAGER, campaign_id=str(campaign))) == [fr_review, paris]
    assert ids(await month(calendar, FR_MANAGER, status="published")) == [paris, company]
    statuses = {"status": ["draft", "in_review"]}
    assert ids(await month(calendar, FR_MANAGER, **statuses)) == [fr_draft, fr_review]
    assert ids(await month(calendar, FR_MANAGER, assignee="fanny")) == [fr_review]
    assert ids(await month(calendar, CENTRAL, assignee="fanny")) == [fr_review, de]
    combined = await month(
        calendar, FR_MANAGER, district_id="fr", status="published", campaign_id=str(campaign)
    )
    assert ids(combined) == [paris]
    unknown_status = await calendar.client.get(
        "/posts", params={**MONTH, "status": "lost"}, headers=FR_MANAGER
    )
    assert unknown_status.status_code == 422


async def test_list_filters_take_commas_as_well_as_repeats(
    calendar: RunningService, accounts: Accounts
) -> None:
    draft = await create_post(calendar, "fr", day(2), account_ids=[accounts.fr_x])
    review = await create_post(
        calendar, "fr", day(4), status="in_review", account_ids=[accounts.fr_instagram]
    )
    await create_post(calendar, "fr", day(6), status="published", account_ids=[accounts.paris_x])

    repeated = await month(calendar, FR_MANAGER, status=["draft", "in_review"])
    assert ids(repeated) == [draft, review]
    assert await month(calendar, FR_MANAGER, status="draft,in_review") == repeated
    assert await month(calendar, FR_MANAGER, status=["in_review", "draft,in_review"]) == repeated
    both_accounts = f"{accounts.fr_x},{accounts.fr_instagram}"
    assert await month(calendar, FR_MANAGER, account_id=both_accounts) == repeated
    for bad in ({"status": "draft,lost"}, {"account_id": f"{accounts.fr_x},not-an-id"}):
        response = await calendar.client.get("/posts", params={**MONTH, **bad}, headers=FR_MANAGER)
        assert response.status_code == 422, bad
        assert response.json()["type"].endswith("/validation-error")


async def test_a_filter_the_view_does_not_take_is_refused(calendar: RunningService) -> None:
    response = await calendar.client.get(
        "/posts", params={**MONTH, "district": "fr"}, headers=FR_MANAGER
    )
    assert response.status_code == 422
    body = response.json()
    assert body["type"].endswith("/unknown-query-parameter")
    assert body["unknown_parameters"] == ["district"]
    assert {"from", "to", "district_id", "limit", "cursor"} <= set(body["accepted_parameters"])


async def test_another_districts_objects_are_not_found_as_filters(
    calendar: RunningService,
) -> None:
    campaign = await create_campaign(calendar, "fr")
    await create_post(calendar, "fr", day(2), campaign_id=campaign)
    async with calendar.sessions() as session:
        fr_calendar = (await calendar_for(session, "fr")).id

    for params, slug in [
        ({"district_id": "fr"}, "district-not-found"),
        ({"district_id": "nowhere"}, "district-not-found"),
        ({"calendar_id": str(fr_calendar)}, "calendar-not-found"),
        ({"campaign_id": str(campaign)}, "campaign-not-found"),
    ]:
        response = await calendar.client.get(
            "/posts", params={**MONTH, **params}, headers=DE_MANAGER
        )
        assert response.status_code == 404, params
        assert response.json()["type"].endswith(f"/{slug}")


async def test_pages_follow_each_other_without_gaps_or_repeats(calendar: RunningService) -> None:
    created = []
    for n in range(23):
        # Several posts share an instant: the id breaks the tie, across page boundaries too.
        created.append(await create_post(calendar, "fr" if n % 2 else "fr-paris", day(n // 3 + 1)))
    await create_post(calendar, "de", day(2))
    everything = ids(await month(calendar, FR_VIEWER))
    assert sorted(everything) == sorted(created)

    pages: list[list[uuid.UUID]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {**MONTH, "limit": 5, **({"cursor": cursor} if cursor else {})}
        response = await calendar.client.get("/posts", params=params, headers=FR_VIEWER)
        assert response.status_code == 200, response.text
        pages.append(ids(response.json()["items"]))
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break

    assert [len(page) for page in pages] == [5, 5, 5, 5, 3]
    assert [post for page in pages for post in page] == everything
    bad = await calendar.client.get(
        "/posts", params={**MONTH, "cursor": "bm90IGEgY3Vyc29y"}, headers=FR_VIEWER
    )
    assert bad.status_code == 400
    assert bad.json()["type"].endswith("/invalid-cursor")


async def test_a_page_holds_100_posts_unless_asked_for_fewer(calendar: RunningService) -> None:
    for n in range(105):
        await create_post(calendar, "fr", MAY + timedelta(hours=n))

    response = await calendar.client.get("/posts", params=MONTH, headers=FR_VIEWER)
    assert len(response.json()["items"]) == 100
    assert response.json()["next_cursor"] is not None
    # The service's maximum page size (100 by default) caps what a client asks for.
    response = await calendar.client.get(
        "/posts", params={**MONTH, "limit": 1000}, headers=FR_VIEWER
    )
    assert len(response.json()["items"]) == 100
    rest = await calendar.client.get(
        "/posts", params={**MONTH, "cursor": response.json()["next_cursor"]}, headers=FR_VIEWER
    )
    assert len(rest.json()["items"]) == 5
    assert rest.json()["next_cursor"] is None


@pytest.mark.parametrize(
    ("params", "slug"),
    [
        ({"from": "2027-05-02T00:00:00Z", "to": "2027-05-01T00:00:00Z"}, "invalid-range"),
        ({"from": "2027-05-01T00:00:00Z", "to": "2027-05-01T00:00:00Z"}, "invalid-range"),
        ({"from": "2027-01-01T00:00:00Z", "to": "2028-02-05T00:00:01Z"}, "invalid-range"),
        ({"from": "2027-05-01T00:00:00", "to": "2027-06-01T00:00:00Z"}, "validation-error"),
        ({"from": "2027-05-01T00:00:00Z"}, "validation-error"),
        ({"from": "yesterday", "to": "2027-06-01T00:00:00Z"}, "validation-error"),
        ({**MONTH, "limit": 0}, "validation-error"),
        ({**MONTH, "account_id": "not-a-uuid"}, "validation-error"),
        ({**MONTH, "district_id": "Not A District"}, "validation-error"),
    ],
)
async def test_a_bad_range_is_refused(
    calendar: RunningService, params: dict[str, Any], slug: str
) -> None:
    response = await calendar.client.get("/posts", params=params, headers=FR_VIEWER)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith(f"/{slug}")


async def test_a_range_of_exactly_400_days_is_allowed(calendar: RunningService) -> None:
    post = await create_post(calendar, "fr", datetime(2027, 12, 31, tzinfo=UTC))
    params = {"from": "2027-01-01T00:00:00Z", "to": "2028-02-05T00:00:00Z"}
    response = await calendar.client.get("/posts", params=params, headers=FR_VIEWER)
    assert response.status_code == 200, response.text
    assert ids(response.json()["items"]) == [post]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("0001-01-01T00:30:00+01:00", "0001-01-02T00:00:00Z"),
        ("9999-12-30T00:00:00Z", "9999-12-31T23:59:59-01:00"),
    ],
)
async def test_a_range_outside_the_years_planned_is_422(
    calendar: RunningService, start: str, end: str
) -> None:
    response = await calendar.client.get(
        "/posts", params={"from": start, "to": end}, headers=FR_VIEWER
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/validation-error")


class TestBacklog:
    """GET /posts/backlog: the posts without a publication time, with the range view's
    filters and pages."""

    async def backlog(
        self, calendar: RunningService, headers: dict[str, str], **params: Any
    ) -> list[dict[str, Any]]:
        response = await calendar.client.get("/posts/backlog", params=params, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["next_cursor"] is None
        items: list[dict[str, Any]] = body["items"]
        return items

    async def test_drafts_without_a_time_are_listed_oldest_first_to_whom_sees_them(
        self, calendar: RunningService, accounts: Accounts
    ) -> None:
        first = await create_post(calendar, "fr", None, title="an idea", assignee="fanny")
        paris = await create_post(calendar, "fr-paris", None, account_ids=[accounts.paris_x])
        company = await create_post(calendar, None, None)
        await create_post(calendar, "de", None)
        await create_post(calendar, "fr", day(3))  # has a time: on the range view, not here
        cancelled = await create_post(calendar, "fr", None, status="cancelled")

        seen = await self.backlog(calendar, FR_MANAGER)
        assert ids(seen) == [first, paris, company, cancelled]
        assert seen[0]["title"] == "an idea"
        assert seen[0]["publish_at"] is None
        assert seen[0]["assignee"] == "fanny"
        assert seen[1]["account_ids"] == [str(accounts.paris_x)]
        assert "created_at" in seen[0]
        # Not on any range.
        assert first not in ids(await month(calendar, FR_MANAGER))

        assert ids(await self.backlog(calendar, FR_MANAGER, district_id="fr-paris")) == [paris]
        assert ids(await self.backlog(calendar, FR_MANAGER, status="draft")) == [
            first,
            paris,
            company,
        ]
        assert ids(await self.backlog(calendar, FR_MANAGER, assignee="fanny")) == [first]
        assert ids(await self.backlog(calendar, FR_MANAGER, account_id=str(accounts.paris_x))) == [
            paris
        ]
        de = await calendar.client.get(
            "/posts/backlog", params={"district_id": "de"}, headers=FR_MANAGER
        )
        assert de.status_code == 404

    async def test_the_backlog_filters_by_calendar_and_campaign(
        self, calendar: RunningService, accounts: Accounts
    ) -> None:
        campaign = await create_campaign(calendar, "fr")
        in_campaign = await create_post(calendar, "fr", None, campaign_id=campaign)
        other = await create_post(calendar, "fr", None)
        async with calendar.sessions.begin() as session:
            fr_calendar = (await calendar_for(session, "fr")).id
        assert ids(await self.backlog(calendar, FR_MANAGER, campaign_id=str(campaign))) == [
            in_campaign
        ]
        assert ids(await self.backlog(calendar, FR_MANAGER, calendar_id=str(fr_calendar))) == [
            in_campaign,
            other,
        ]

    async def test_the_backlog_pages_without_gaps_or_repeats(
        self, calendar: RunningService, accounts: Accounts
    ) -> None:
        made = [await create_post(calendar, "fr", None, title=f"idea {n}") for n in range(5)]
        seen: list[uuid.UUID] = []
        cursor: str | None = None
        pages = 0
        while True:
            params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            response = await calendar.client.get("/posts/backlog", params=params, headers=FR_VIEWER)
            assert response.status_code == 200, response.text
            body = response.json()
            assert len(body["items"]) <= 2
            seen.extend(ids(body["items"]))
            pages += 1
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert (seen, pages) == (made, 3)

    async def test_unknown_parameters_are_refused(
        self, calendar: RunningService, accounts: Accounts
    ) -> None:
        response = await calendar.client.get(
            "/posts/backlog", params={"from": MONTH["from"]}, headers=FR_VIEWER
        )
        assert response.status_code == 422
        assert response.json()["type"].endswith("/unknown-query-parameter")
