"""Problem details (RFC 9457)."""

from __future__ import annotations

from chassis.errors import Conflict, problem_responses


class RequestClosed(Conflict):
    type_slug = "request-closed"
    title = "The request is closed"


def test_extensions_are_kept_but_never_replace_standard_members() -> None:
    body = RequestClosed("Closed already.", status="approved", request_id="r1").to_dict("/x")
    assert body == {
        "type": "https://chorus.dev/problems/request-closed",
        "title": "The request is closed",
        "status": 409,
        "detail": "Closed already.",
        "instance": "/x",
        "request_id": "r1",
    }


def test_every_problem_of_a_status_is_documented() -> None:
    class Other(Conflict):
        type_slug = "other"
        title = "Other conflict"

    described = problem_responses(RequestClosed, Other)[409]["description"]
    assert "The request is closed" in described
    assert "Other conflict" in described
