"""Tokens in paths never reach the logs: the access log of a service writes a public route's
token (a calendar feed's, an outside reviewer's) as a fingerprint, and the JSON formatter
redacts any line that still carries one."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import sys

import pytest

from chassis.observability import JsonFormatter, redact
from tests.chassis.kit import captured_logs
from tests.conftest import Infrastructure
from tests.kit import running_service


def fingerprint_of(token: str) -> str:
    return "~" + hashlib.sha256(token.encode()).hexdigest()[:8]


@pytest.mark.asyncio
async def test_feed_tokens_are_redacted_in_the_access_log(infrastructure: Infrastructure) -> None:
    token = secrets.token_urlsafe(24)
    async with running_service(infrastructure, "calendar") as calendar:
        with captured_logs("chorus.access") as records:
            response = await calendar.client.get(f"/public/feeds/{token}.ics")
    assert response.status_code == 404, response.text
    [line] = [r.getMessage() for r in records]
    assert token not in line
    assert line.startswith(f"GET /public/feeds/{fingerprint_of(token + '.ics')} 404")


@pytest.mark.asyncio
async def test_review_tokens_are_redacted_in_the_access_log(infrastructure: Infrastructure) -> None:
    token = secrets.token_urlsafe(24)
    async with running_service(infrastructure, "approvals") as approvals:
        with captured_logs("chorus.access") as records:
            await approvals.client.get(f"/public/reviews/{token}")
            await approvals.client.post(f"/public/reviews/{token}/decision", json={})
    lines = [r.getMessage() for r in records]
    assert len(lines) == 2
    assert all(token not in line for line in lines), lines
    assert lines[0].startswith(f"GET /public/reviews/{fingerprint_of(token)} ")
    assert lines[1].startswith(f"POST /public/reviews/{fingerprint_of(token)}/decision ")


def test_the_formatter_redacts_what_other_loggers_write() -> None:
    token = secrets.token_urlsafe(24)
    try:
        raise RuntimeError(f"failed on /api/approvals/public/reviews/{token}?x=1")
    except RuntimeError:
        record = logging.LogRecord(
            "chassis.errors",
            logging.ERROR,
            __file__,
            1,
            "unhandled error on %s %s",
            ("GET", f"/public/feeds/{token}.ics"),
            sys.exc_info(),
        )
    line = JsonFormatter().format(record)
    assert token not in line
    entry = json.loads(line)
    assert (
        entry["message"] == f"unhandled error on GET /public/feeds/{fingerprint_of(token + '.ics')}"
    )
    assert f"/public/reviews/{fingerprint_of(token)}?x=1" in entry["exception"]


def test_redact_leaves_other_paths_alone() -> None:
    assert redact("GET /districts/fr 200") == "GET /districts/fr 200"
    assert redact("GET /public/feeds 404") == "GET /public/feeds 404"
    assert redact("/publicity/feeds/abc") == "/publicity/feeds/abc"
