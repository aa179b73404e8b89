"""RFC 9457 problem details for every error a service or the gateway returns.

Domain errors subclass :class:`Problem` with a stable ``type`` and a status. There is no
catch-all mapper that turns unknown exceptions into 4xx: an unexpected exception is a 500, which
is still rendered as problem+json but logged as the bug it is.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://chorus.dev/problems/"

log = logging.getLogger("chassis.errors")


class Problem(Exception):
    """An error with an RFC 9457 rendering. Subclass per domain error."""

    status: ClassVar[int] = 500
    type_slug: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extensions = extensions

    def headers(self) -> dict[str, str] | None:
        """Response headers the problem needs (``Retry-After`` on a 429, say)."""
        return {"WWW-Authenticate": "Bearer"} if self.status == 401 else None

    def to_dict(self, instance: str | None = None) -> dict[str, Any]:
        return problem_body(
            self.status, self.type_slug, self.title, self.detail, instance, self.extensions
        )


class BadRequest(Problem):
    status = 400
    type_slug = "bad-request"
    title = "Bad request"


class Unauthorized(Problem):
    status = 401
    type_slug = "unauthorized"
    title = "Authentication required"


class Forbidden(Problem):
    status = 403
    type_slug = "forbidden"
    title = "Not allowed"


class NotFound(Problem):
    status = 404
    type_slug = "not-found"
    title = "Not found"


class Conflict(Problem):
    status = 409
    type_slug = "conflict"
    title = "Conflict"


class Unprocessable(Problem):
    status = 422
    type_slug = "unprocessable"
    title = "The request breaks a rule"


def problem_body(
    status: int,
    type_slug: str,
    title: str,
    detail: str,
    instance: str | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    # Extension members never replace the standard ones (RFC 9457 section 3.2).
    body: dict[str, Any] = dict(extensions or {})
    body.update(type=TYPE_BASE + type_slug, title=title, status=status, detail=detail)
    if instance:
        body["instance"] = instance
    return body


def problem_response(
    status: int,
    type_slug: str,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, type_slug, title, detail, instance, extensions),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


# Titles and slugs for statuses the framework raises itself (unknown route, wrong method...).
_HTTP_STATUS_PROBLEMS: dict[int, tuple[str, str]] = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Not allowed"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    429: ("too-many-requests", "Too many requests"),
}


def install_problem_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return JSONResponse(
            exc.to_dict(instance=request.url.path),
            status_code=exc.status,
            media_type=PROBLEM_JSON,
            headers=exc.headers(),
        )

    async def on_http_exception(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        slug, title = _HTTP_STATUS_PROBLEMS.get(exc.status_code, ("http-error", "HTTP error"))
        detail = exc.detail if isinstance(exc.detail, str) else title
        return problem_response(
            exc.status_code,
            slug,
            title,
            detail,
            instance=request.url.path,
            headers=dict(exc.headers) if exc.headers else None,
        )

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type")}
            for err in exc.errors()
        ]
        return problem_response(
            422,
            "validation-error",
            "The request is not valid",
            "One or more fields are invalid; see 'errors'.",
            instance=request.url.path,
            errors=errors,
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            500,
            "internal-error",
            "Internal error",
            "An unexpected error occurred; it has been logged.",
            instance=request.url.path,
        )

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http_exception)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_unexpected)


def problem_responses(*problems: type[Problem]) -> dict[int | str, dict[str, Any]]:
    """`responses=` for an endpoint, so the errors it returns appear in OpenAPI."""
    out: dict[int | str, dict[str, Any]] = {}
    for problem in problems:
        entry = out.setdefault(
            problem.status,
            {
                "description": "",
                "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
            },
        )
        line = f"{problem.title} (`{TYPE_BASE}{problem.type_slug}`)"
        entry["description"] = f"{entry['description']}; {line}" if entry["description"] else line
    return out
