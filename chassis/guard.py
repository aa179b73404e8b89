"""Refusals at the edge, before any handler runs.

- JSON bodies larger than the service's limit are refused (413) while they stream in, so a
  client cannot make a service buffer an unbounded body.
- A NUL character, in a JSON string (\\u0000) or in the query string (%00), is refused (422):
  PostgreSQL text cannot hold it, and letting it through would end in a database error.

Other bodies (CSV imports, uploads) are not touched here: their endpoints stream and limit them.
"""

from __future__ import annotations

import json
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chassis.errors import PROBLEM_JSON, problem_body

# \u0000 preceded by an even number of backslashes (an odd number escapes the backslash).
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000", re.IGNORECASE)


class RequestGuard:
    def __init__(self, app: ASGIApp, max_json_bytes: int) -> None:
        self.app = app
        self.max_json_bytes = max_json_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if b"%00" in scope.get("query_string", b"") or "\x00" in scope.get("path", ""):
            await _refuse(send, 422, "nul-character", "NUL characters are not accepted.")
            return
        headers = dict(scope["headers"])
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if not (content_type == b"application/json" or content_type.endswith(b"+json")):
            await self.app(scope, receive, send)
            return
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_json_bytes:
            await _refuse(send, 413, "payload-too-large", self._too_large())
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
                await _refuse(send, 413, "payload-too-large", self._too_large())
                return
        if b"\x00" in body or _JSON_NUL.search(body):
            await _refuse(send, 422, "nul-character", "NUL characters are not accepted.")
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _too_large(self) -> str:
        return f"JSON bodies are limited to {self.max_json_bytes} bytes."


async def _refuse(send: Send, status: int, slug: str, detail: str) -> None:
    title = {413: "Payload too large", 422: "The request is not valid"}[status]
    payload = json.dumps(problem_body(status, slug, title, detail)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
