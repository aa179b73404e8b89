"""Refusals at the edge, before any handler runs.

- A request that repeats ``Content-Type`` or ``Content-Length`` is refused (400). Two copies
  are read differently by different layers (this guard, FastAPI, a proxy): one layer would
  check a body as one type and another parse it as the other.
- Every body has a limit, refused with 413 while it streams in, so a client (an anonymous one
  on a public route too) cannot make a service buffer an unbounded body:
  - JSON bodies: ``max_json_body_bytes``, read here whole (they are scanned, below);
  - any other body: ``max_body_bytes``, or what its route declares with ``@body_limit``
    (uploads, imports). It is counted as the application reads it: a declared
    ``Content-Length`` over the limit is refused at the first read, before a byte is taken,
    and a body without one is cut off as it passes the limit. Nothing reads a body before
    its route is known: FastAPI reads a body parameter before the route's dependencies run
    (so the default limit bounds what an anonymous client can make a service hold), and an
    endpoint that streams its body (``request.stream()``) reads it after the principal was
    checked.
- A NUL character, in a JSON string (\\u0000) or in the query string (%00), is refused (422):
  PostgreSQL text cannot hold it, and letting it through would end in a database error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chassis.errors import PROBLEM_JSON, BadRequest, Problem, Unprocessable


class RepeatedHeader(BadRequest):
    type_slug = "repeated-header"


class PayloadTooLarge(Problem):
    status = 413
    type_slug = "payload-too-large"
    title = "Payload too large"


class NulCharacter(Unprocessable):
    type_slug = "nul-character"
    title = "The request is not valid"


# \u0000 preceded by an even number of backslashes (an odd number escapes the backslash).
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000", re.IGNORECASE)
# Headers whose repetition lets layers disagree on what the body is.
SINGLE_HEADERS = frozenset({b"content-type", b"content-length"})
BODY_LIMIT_ATTRIBUTE = "__chorus_body_limit__"

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
# The service's settings in, the largest body in bytes out.
BodyLimit = Callable[[Any], int]


def body_limit(limit: BodyLimit) -> Callable[[Endpoint], Endpoint]:
    """Declare that an endpoint takes non-JSON bodies up to ``limit(settings)`` bytes rather
    than the service's ``max_body_bytes``. Put it under the route decorator::

        @router.post("/assets")
        @body_limit(lambda settings: settings.asset_max_bytes)
        async def upload_asset(...): ...

    The limit is read on each request, from the app's current settings. The endpoint may check
    a declared ``Content-Length`` itself first, to refuse with a problem of its own. It should
    read its body in the handler (``request.stream()``), after the principal: a body parameter
    is read before the dependencies run, so an anonymous client could make the service hold
    up to the larger limit."""

    def mark(endpoint: Endpoint) -> Endpoint:
        setattr(endpoint, BODY_LIMIT_ATTRIBUTE, limit)
        return endpoint

    return mark


def repeated_header(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The first of ``SINGLE_HEADERS`` that appears more than once, or None."""
    seen: set[bytes] = set()
    for raw_name, _value in headers:
        name = raw_name.lower()
        if name in SINGLE_HEADERS:
            if name in seen:
                return name.decode("latin-1")
            seen.add(name)
    return None


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a body passes its limit; the app's exception handlers turn
    it into a 413 problem (FastAPI lets an HTTPException from a body read through as it is)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Bodies of this request are limited to {limit} bytes.")
        self.limit = limit


class SingleHeaderGuard:
    """Only the repeated-header refusal: for the gateway, which checks no bodies itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (name := repeated_header(scope["headers"])):
            await _refuse_repeated(send, name)
            return
        await self.app(scope, receive, send)


class RequestGuard:
    def __init__(self, app: ASGIApp, max_json_bytes: int, max_body_bytes: int) -> None:
        self.app = app
        self.max_json_bytes = max_json_bytes
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if b"%00" in scope.get("query_string", b"") or "\x00" in scope.get("path", ""):
            await _refuse(send, NulCharacter("NUL characters are not accepted."))
            return
        if name := repeated_header(scope["headers"]):
            await _refuse_repeated(send, name)
            return
        headers = {name.lower(): value for name, value in scope["headers"]}
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        raw_length = headers.get(b"content-length")
        declared = int(raw_length) if raw_length is not None and raw_length.isdigit() else None
        if content_type == b"application/json" or content_type.endswith(b"+json"):
            await self._json(scope, receive, send, declared)
        else:
            await self._other(scope, receive, send, declared)

    async def _json(self, scope: Scope, receive: Receive, send: Send, declared: int | None) -> None:
        if declared is not None and declared > self.max_json_bytes:
            await _refuse(send, PayloadTooLarge(self._too_large()))
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_json_bytes:
                await _refuse(send, PayloadTooLarge(self._too_large()))
                return
        if b"\x00" in body or _JSON_NUL.search(body):
            await _refuse(send, NulCharacter("NUL characters are not accepted."))
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _other(
        self, scope: Scope, receive: Receive, send: Send, declared: int | None
    ) -> None:
        limit = -1  # not known until the first read
        received = 0
        started = False

        async def limited() -> Message:
            nonlocal limit, received
            if limit < 0:
                # The first read comes after routing, so the route's own limit is known.
                limit = self._limit_of(scope)
                if declared is not None and declared > limit:
                    raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, watch)
        except BodyTooLarge as exc:
            # Normally the app's handlers answered already; this is for a read outside them.
            if started:
                raise
            await _refuse(send, PayloadTooLarge(str(exc.detail)))

    def _limit_of(self, scope: Scope) -> int:
        declared_by_route = getattr(scope.get("endpoint"), BODY_LIMIT_ATTRIBUTE, None)
        if declared_by_route is None:
            return self.max_body_bytes
        settings = getattr(getattr(scope.get("app"), "state", None), "settings", None)
        return int(declared_by_route(settings))

    def _too_large(self) -> str:
        return f"JSON bodies are limited to {self.max_json_bytes} bytes."


async def _refuse_repeated(send: Send, name: str) -> None:
    await _refuse(
        send, RepeatedHeader(f"The {name} header must appear once; this request repeats it.")
    )


async def _refuse(send: Send, problem: Problem) -> None:
    payload = json.dumps(problem.to_dict()).encode()
    await send(
        {
            "type": "http.response.start",
            "status": problem.status,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
