"""Factories of the webhooks tests: the organisation of the district replica, the people acting
in it, a resolver with no real DNS, and local receivers: real HTTP servers on 127.0.0.1 that
record what they get and answer as told."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from chassis.events import CloudEvent
from services.webhooks.address_guard import AddressRefused, IPAddress
from services.webhooks.models import districts
from tests.kit import RunningService, as_user, replicate_districts

CENTRAL = as_user("regina", hq="regional_manager")
FR_MANAGER = as_user("francois", fr="district_manager")
PARIS_MANAGER = as_user("paul", **{"fr-paris": "district_manager"})
DE_MANAGER = as_user("dieter", de="district_manager")
FR_WRITER = as_user("fanny", fr="contributor")

# The allow-list the tests run with: their receivers listen on loopback.
LOCAL = ["127.0.0.1/32"]


async def seed_districts(service: RunningService) -> None:
    await replicate_districts(service, districts)


@dataclass
class FakeResolver:
    """Names to addresses, without DNS; an unknown name does not resolve."""

    names: dict[str, list[str]] = field(default_factory=dict)

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        if host not in self.names:
            raise AddressRefused(f"{host} does not resolve.")
        return [ipaddress.ip_address(a) for a in self.names[host]]


Answer = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    path: str


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1; each request is recorded, then answered by `answer`
    (200 by default)."""

    port: int = 0
    received: list[Received] = field(default_factory=list)
    answer: Answer | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        headers = {name.lower(): value for name, value in request.headers.items()}
        self.received.append(Received(headers, await request.read(), request.path))
        self.arrived.set()
        if self.answer is not None:
            return await self.answer(request)
        return web.Response(text="ok")


@contextlib.asynccontextmanager
async def receiver(answer: Answer | None = None) -> AsyncIterator[Receiver]:
    box = Receiver(answer=answer)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", box.handle)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    box.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    try:
        yield box
    finally:
        await runner.cleanup()


def status(code: int, headers: dict[str, str] | None = None, body: str = "") -> Answer:
    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(status=code, headers=headers, text=body)

    return answer


async def create_endpoint(
    service: RunningService,
    url: str,
    *,
    headers: dict[str, str] = FR_MANAGER,
    event_types: list[str] | None = None,
    district_id: str | None = "fr",
    **fields: Any,
) -> dict[str, Any]:
    body = {"url": url, "event_types": event_types or ["*"], "district_id": district_id, **fields}
    response = await service.client.post("/endpoints", json=body, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def event(
    event_type: str = "chorus.calendar.post.scheduled",
    *,
    district_id: str | None = "fr",
    **data: Any,
) -> CloudEvent:
    """An event as another service publishes it."""
    service = event_type.split(".")[1]
    body = {"id": str(uuid.uuid4()), **data}
    if district_id is not None:
        body["district_id"] = district_id
    return CloudEvent(source=f"/services/{service}", type=event_type, subject=body["id"], data=body)


async def store(service: RunningService, cloud_event: CloudEvent) -> list[dict[str, Any]]:
    """What the consumer does with an event: its messages, stored with their first jobs."""
    from services.webhooks.deliveries.service import route

    async with service.sessions.begin() as session:
        await route(session, cloud_event)
    return await messages_of(service, cloud_event.id)


async def messages_of(service: RunningService, event_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await service.scalar(
        "SELECT coalesce(json_agg(to_json(m) ORDER BY created_at), '[]') FROM messages m"
        " WHERE event_id = :id",
        id=event_id,
    )
    return list(rows)


async def jobs_of(service: RunningService, message_id: str) -> list[dict[str, Any]]:
    """The delivery jobs deferred for a message, in order."""
    rows = await service.scalar(
        "SELECT coalesce(json_agg(json_build_object('token', (args->>'token')::int,"
        " 'scheduled_at', scheduled_at, 'status', status) ORDER BY id), '[]')"
        " FROM procrastinate_jobs WHERE args->>'message_id' = :id",
        id=message_id,
    )
    return list(rows)


async def execute(service: RunningService, sql: str, **params: Any) -> None:
    """A committed statement (``RunningService.scalar`` only reads)."""
    from sqlalchemy import text

    async with service.sessions.begin() as session:
        await session.execute(text(sql), params)
