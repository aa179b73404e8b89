"""Links and documents through the gateway of `chorus dev`, as a frontend sees them.

A newcomer's flow across the real processes: an account, a post submitted for approval, an
outside reviewer invited, a calendar feed. Every link any response returns (a JSON member
named ``url``, ``href`` or ``*_url`` that is not a social platform's page, or a ``Location``
header) is fetched as it is and answers 200: a public link (a review page, a feed) without a
token, any other with the token of the caller it was given to. A relative link, or one
missing the gateway's ``/api/<service>`` prefix, fails. Then the operational routes: served
without a token, /metrics not at all, and each service's /docs loads its document, whose
server is the service's base at the gateway.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest

from gateway.auth import issue_dev_token
from tests.calendar.factories import png
from tests.e2e.test_dev_run import SERVICES, dev_ports, dev_run

pytestmark = pytest.mark.slow

# Links to pages outside Chorus (the accounts' profiles on their platforms); a post's own
# `link` is its content, not a member named as a link here.
OUTSIDE_LINKS = frozenset({"profile_url"})


def links_in(value: Any, key: str = "") -> Iterator[str]:
    """Every link a JSON body carries, by the name of its member."""
    if isinstance(value, dict):
        for name, item in value.items():
            yield from links_in(item, name)
    elif isinstance(value, list):
        for item in value:
            yield from links_in(item, key)
    elif isinstance(value, str) and key not in OUTSIDE_LINKS and _names_a_link(key):
        yield value


def _names_a_link(key: str) -> bool:
    return key in ("url", "href") or key.endswith("_url")


class Walk:
    """An httpx client on the gateway that notes every link of every response."""

    def __init__(self, gateway: str, http: httpx.Client) -> None:
        self.gateway = gateway
        self.http = http
        # (where it was returned, the link, the token of the caller it was returned to)
        self.links: list[tuple[str, str, str]] = []

    def call(
        self, method: str, path: str, token: str, expect: int = 200, **kwargs: Any
    ) -> dict[str, Any]:
        response = self.http.request(
            method,
            f"{self.gateway}{path}",
            headers={"Authorization": f"Bearer {token}"},
            **kwargs,
        )
        assert response.status_code == expect, (method, path, response.text)
        where = f"{method} {path}"
        if "location" in response.headers:
            self.links.append((where, response.headers["location"], token))
        if not response.content:
            return {}
        body: dict[str, Any] = response.json()
        self.links.extend((where, link, token) for link in links_in(body))
        return body


def eventually(check: Callable[[], Any], what: str, within: float = 60) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    pytest.fail(f"not seen within {within}s: {what}")


def test_every_link_a_response_returns_works_from_outside() -> None:
    state = Path(tempfile.mkdtemp(prefix="chorus-links-e2e-"))
    with dev_run(state, dev_ports()) as run, httpx.Client(timeout=10) as http:
        walk = Walk(run.gateway, http)
        author = run.token  # the dev user, regional_manager on hq
        secret = json.loads((state / "dev-secrets.json").read_text())["jwt_secret"]
        lawyer = issue_dev_token(secret, sub="lena", grants=["hq:legal"])

        # Once approvals knows hq (created at the start, replicated through events), its post
        # policy asks legal, who may invite an outside reviewer.
        legal = {"key": "legal", "name": "Legal", "role": "legal", "outside_review": {}}
        policy = {"steps": [legal]}
        eventually(
            lambda: (
                http.put(
                    f"{run.gateway}/api/approvals/policies/post",
                    params={"district_id": "hq"},
                    json=policy,
                    headers={"Authorization": f"Bearer {author}"},
                ).status_code
                in (200, 201)
            ),
            "the post policy of hq set in approvals",
        )
        account = walk.call(
            "POST",
            "/api/inventory/accounts",
            author,
            expect=201,
            json={
                "platform": "x",
                "handle": "chorus_links",
                "district_id": "hq",
                "status": "official",
            },
        )
        eventually(
            lambda: any(
                item["id"] == account["id"]
                for item in walk.call("GET", "/api/calendar/accounts", author)["items"]
            ),
            "the account in calendar",
        )
        post = walk.call(
            "POST",
            "/api/calendar/posts",
            author,
            expect=201,
            json={
                "district_id": "hq",
                "title": "Links that work",
                "text": "Our spring collection is here.",
                "account_ids": [account["id"]],
                "publish_at": (datetime.now(UTC) + timedelta(days=10)).isoformat(),
                "timezone": "Europe/Paris",
            },
        )
        walk.call("POST", f"/api/calendar/posts/{post['id']}/submit", author)
        [request] = eventually(
            lambda: walk.call(
                "GET", "/api/approvals/requests", author, params={"subject_id": post["id"]}
            )["items"],
            "the approval request of the post",
        )

        # The post shows its approval request as approvals' events told calendar: the
        # request, its step and who must act (the submission's consistency token would make
        # the read wait; a poll does the same here).
        def shown() -> dict[str, Any] | None:
            approval = walk.call("GET", f"/api/calendar/posts/{post['id']}", author)["approval"]
            return approval if approval and approval["request_id"] == request["id"] else None

        approval = eventually(shown, "the approval request on the post")
        assert approval["status"] == "open"
        assert approval["step"]["role"] == "legal"
        assert {"role": "legal", "district_id": "hq"}.items() <= approval["waiting_for"][0].items()

        invite = walk.call(
            "POST",
            f"/api/approvals/requests/{request['id']}/steps/0/invites",
            lawyer,
            expect=201,
            json={"reviewer_name": "Olivia Counsel", "reviewer_email": "olivia@counsel.example"},
        )
        assert invite["url"] == f"{run.gateway}/api/approvals/public/reviews/{invite['token']}"

        [calendar] = [
            c
            for c in walk.call("GET", "/api/calendar/calendars", author)["items"]
            if c["district_id"] == "hq"
        ]
        feed = walk.call(
            "POST",
            f"/api/calendar/calendars/{calendar['id']}/feed-tokens",
            author,
            expect=201,
            json={"label": "My Outlook"},
        )
        assert feed["url"] == f"{run.gateway}/api/calendar/public/feeds/{feed['token']}.ics"

        asset = walk.call(
            "POST",
            "/api/calendar/assets",
            author,
            expect=201,
            files={"file": ("pixel.png", png(), "image/png")},
            data={"district_id": "hq", "title": "A pixel"},
        )
        assert asset["content_url"] == f"{run.gateway}/api/calendar/assets/{asset['id']}/content"

        # Every link, as it is: none relative, none without its prefix. Public ones answer
        # without a token; the others with the token of whoever was given them.
        returned = {link for _where, link, _token in walk.links}
        assert returned >= {invite["url"], feed["url"], asset["content_url"]}
        for where, link, token in walk.links:
            public = link.startswith(f"{run.gateway}/api/") and "/public/" in link
            headers = {} if public else {"Authorization": f"Bearer {token}"}
            response = http.get(link, headers=headers)
            assert response.status_code == 200, (where, link, response.text)
        page = http.get(invite["url"]).json()
        assert page["title"] == "Links that work"
        assert "BEGIN:VCALENDAR" in http.get(feed["url"]).text

        # Changes asked for: the post carries the approver's comment as its status_reason.
        walk.call(
            "POST",
            f"/api/approvals/requests/{request['id']}/decisions",
            lawyer,
            expect=201,
            json={"outcome": "request_changes", "comment": "Name the offer's end date."},
        )

        def sent_back() -> dict[str, Any] | None:
            now = walk.call("GET", f"/api/calendar/posts/{post['id']}", author)
            return now if now["status"] == "changes_requested" else None

        back = eventually(sent_back, "the post back with the approver's comment")
        assert back["status_reason"] == "Name the offer's end date."
        assert back["approval"]["status"] == "changes_requested"

        for service in SERVICES:
            operational_routes_work_through_the_gateway(http, run.gateway, service, author)


def operational_routes_work_through_the_gateway(
    http: httpx.Client, gateway: str, service: str, token: str
) -> None:
    base = f"{gateway}/api/{service}"
    for path in ("/healthz", "/readyz", "/openapi.json", "/asyncapi.json", "/docs"):
        response = http.get(f"{base}{path}")
        assert response.status_code == 200, (service, path, response.text)
    for path in ("/metrics", "/public/%2e%2e/metrics", "/public/..%2fmetrics"):
        refused = http.get(f"{base}{path}")
        assert refused.status_code in (400, 404), (service, path)
        assert refused.headers["content-type"] == "application/problem+json"
        assert "chorus_http_requests_total" not in refused.text
    # The page loads its document by a URL that works behind the prefix.
    page = http.get(f"{base}/docs").text
    [document_url] = re.findall(r"url: '([^']*)'", page)
    document = http.get(urljoin(f"{base}/docs", document_url))
    assert document.status_code == 200
    servers = [server["url"] for server in document.json()["servers"]]
    assert servers == [base]
    # Its paths work as they are from the server it names.
    me = http.get(f"{servers[0]}/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200, me.text
    assert me.json()["service"] == service
