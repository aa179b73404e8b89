"""Real HTTP servers for the gateway tests: uvicorn on 127.0.0.1 serving stand-in upstreams.

The gateway talks to its upstreams with aiohttp over TCP, so the stand-ins are real servers;
the gateway itself runs in-process behind httpx's ASGITransport (or under uvicorn when what is
tested is what its own server adds to a response).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from chassis.observability import HttpMetrics, RequestContextMiddleware
from gateway.app import METHODS, create_app
from gateway.settings import GatewaySettings


@contextlib.asynccontextmanager
async def serve(app: ASGIApp) -> AsyncIterator[str]:
    """Serve `app` with uvicorn on a free port of 127.0.0.1; yields its base URL."""
    # Binding the socket here and handing it to uvicorn leaves no window for another process
    # to take the port between choosing it and listening on it.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    raise RuntimeError("uvicorn stopped before it started serving")
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@contextlib.contextmanager
def closed_port() -> Iterator[str]:
    """A 127.0.0.1 URL where nothing listens: the port is bound (so no one else takes it) but
    not listening, so a connection is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@dataclass(frozen=True)
class Received:
    """One request as the upstream saw it."""

    method: str
    path: str  # as on the wire, still percent-encoded
    query: list[tuple[str, str]]
    headers: Headers
    body: bytes


class EchoUpstream:
    """A stand-in service that records every request and echoes its body back.

    `/slow` answers after 2 s; `/created` answers 201 with headers of its own. Like every
    Chorus service it runs the chassis request-context middleware, so it answers with the
    `x-request-id` it was given.
    """

    def __init__(self) -> None:
        self.url = ""
        self.received: list[Received] = []
        self.app = Starlette(
            routes=[
                Route("/slow", self.slow),
                Route("/created", self.created, methods=["POST"]),
                Route("/{path:path}", self.echo, methods=METHODS),
            ]
        )
        self.app.add_middleware(RequestContextMiddleware, metrics=HttpMetrics("echo"))

    @property
    def last(self) -> Received:
        assert self.received, "the upstream received no request"
        return self.received[-1]

    async def _record(self, request: Request) -> Received:
        received = Received(
            method=request.method,
            path=request.scope["raw_path"].decode("latin-1"),
            query=list(request.query_params.multi_items()),
            headers=request.headers,
            body=await request.body(),
        )
        self.received.append(received)
        return received

    async def echo(self, request: Request) -> Response:
        received = await self._record(request)
        return Response(received.body, media_type=request.headers.get("content-type"))

    async def slow(self, request: Request) -> Response:
        await self._record(request)
        await asyncio.sleep(2)
        return Response("finally")

    async def created(self, request: Request) -> Response:
        await self._record(request)
        response = JSONResponse({"id": "42"}, status_code=201)
        response.headers["location"] = "/items/42"
        response.headers["x-chorus-custom"] = "yes"
        response.headers["content-disposition"] = 'attachment; filename="café.txt"'
        response.set_cookie("a", "1")
        response.set_cookie("b", "2")
        return response


def jwks_app(jwks: dict[str, Any], fetches: list[float] | None = None) -> Starlette:
    """An identity provider's key endpoint: `/jwks.json`; each fetch is noted in `fetches`."""

    async def keys(request: Request) -> JSONResponse:
        if fetches is not None:
            fetches.append(time.monotonic())
        return JSONResponse(jwks)

    return Starlette(routes=[Route("/jwks.json", keys)])


@contextlib.asynccontextmanager
async def gateway_client(settings: GatewaySettings) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway in-process, its lifespan running (ASGITransport does not run it)."""
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gateway") as client,
    ):
        yield client


async def raw_exchange(base_url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send `request` byte for byte (a client library would tidy repeated headers up) and
    read the response: status, headers (the last of each name), body."""
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(10):
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            headers = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
    finally:
        writer.close()
    return status, headers, body
