"""Helpers shared by the service tests: a service app on a fresh migrated database, driven
in-process through httpx, and principal headers as the gateway would sign them."""

from __future__ import annotations

import contextlib
import functools
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import import_module
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis.asyncapi import asyncapi_document
from chassis.consumer import IdempotentConsumer
from chassis.districts import DistrictEvent, DistrictReplica
from chassis.events import CloudEvent
from chassis.principal import PRINCIPAL_HEADER, sign_principal
from tests.asyncapi import conforms
from tests.conftest import INTERNAL_KEY, Infrastructure, migrated_database


def build_app(
    service: str,
    database_url: str,
    infrastructure: Infrastructure,
    role: str = "all",
    **overrides: Any,
) -> FastAPI:
    """The service's app; with role "web" it serves HTTP only (no relay, no consumers), which
    is all most API tests need. Consumer groups get a unique prefix per app."""
    settings_class = getattr(
        import_module(f"services.{service}.settings"), f"{service.capitalize()}Settings"
    )
    settings = settings_class(
        database_url=database_url,
        kafka_bootstrap_servers=infrastructure.bootstrap_servers,
        kafka_enable_idempotence=infrastructure.idempotence,
        internal_key=INTERNAL_KEY,
        process_role=role,
        consumer_group_prefix=f"test-{uuid.uuid4().hex[:8]}.{service}",
        **overrides,
    )
    app: FastAPI = import_module(f"services.{service}.app").create_app(settings)
    return app


def as_user(user: str = "u1", **grants: list[str] | str) -> dict[str, str]:
    """Headers of a request from `user` holding these roles (district=role or [roles])."""
    roles = {d: [r] if isinstance(r, str) else r for d, r in grants.items()}
    # Modules build these once at import; a whole test session must not outlive them.
    header = sign_principal(INTERNAL_KEY.encode(), sub=user, grants=roles, ttl=24 * 3600)
    return {PRINCIPAL_HEADER: header}


@functools.cache
def event_document(service: str) -> dict[str, Any]:
    """The service's AsyncAPI document, built once per test session (events are held against
    it on every read)."""
    catalog = import_module(f"services.{service}.models").messaging.publisher.catalog
    return asyncapi_document(catalog, description="", version="")


@dataclass
class RunningService:
    app: FastAPI
    client: httpx.AsyncClient

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        factory: async_sessionmaker[AsyncSession] = self.app.state.session_factory
        return factory

    async def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        """The events this service wrote to its outbox, oldest first; each one is held against
        the service's AsyncAPI document on the way."""
        messaging = import_module(f"services.{self.name}.models").messaging
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(messaging.outbox.c.payload).order_by(messaging.outbox.c.id)
                )
            ).all()
        found = [json.loads(payload) for (payload,) in rows]
        document = event_document(self.name)
        for event in found:
            # Dead letters share the outbox; they carry other services' events.
            if event.get("type", "").startswith(f"chorus.{self.name}."):
                conforms(document, event)
        if event_type is not None:
            found = [e for e in found if e["type"] == event_type]
        return found

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.sessions() as session:
            return (await session.execute(text(sql), params)).scalar()

    @property
    def name(self) -> str:
        return str(self.app.state.settings.service_name)


@contextlib.asynccontextmanager
async def running_service(
    infrastructure: Infrastructure, service: str, role: str = "web", **overrides: Any
) -> AsyncIterator[RunningService]:
    database_url = await migrated_database(infrastructure, service)
    app = build_app(service, database_url, infrastructure, role, **overrides)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            yield RunningService(app, client)


async def send(infrastructure: Infrastructure, topic: str, *events: CloudEvent) -> None:
    """Publish events to the broker as another service's relay would (keyed by aggregate)."""
    producer = AIOKafkaProducer(bootstrap_servers=infrastructure.bootstrap_servers)
    await producer.start()
    try:
        for event in events:
            data = event.data
            key = str(
                data.get("subject_id") or data.get("post_id") or data.get("id") or event.subject
            )
            await producer.send_and_wait(topic, event.to_json(), key=key.encode())
    finally:
        await producer.stop()


def consumer_of(service: RunningService, name: str) -> IdempotentConsumer:
    [consumer] = [c for c in service.app.state.runtime.consumers if c.name.endswith("." + name)]
    assert isinstance(consumer, IdempotentConsumer)
    return consumer


# The organisation most tests run in, as inventory's district events describe it:
# hq (region) > fr (district) > fr-paris (team); hq > de (district).
DISTRICTS: tuple[dict[str, str], ...] = (
    {"id": "hq", "name": "Headquarters", "kind": "region", "path": "hq"},
    {"id": "fr", "name": "France", "kind": "district", "parent_id": "hq", "path": "hq.fr"},
    {
        "id": "fr-paris",
        "name": "Paris",
        "kind": "team",
        "parent_id": "fr",
        "path": "hq.fr.fr-paris",
    },
    {"id": "de", "name": "Germany", "kind": "district", "parent_id": "hq", "path": "hq.de"},
)


async def replicate_districts(service: RunningService, table: Any) -> None:
    """A service's district replica (`table`) as inventory's events would leave it."""
    replica = DistrictReplica(table)
    async with service.sessions.begin() as session:
        for district in DISTRICTS:
            await replica.apply(session, DistrictEvent.model_validate(district))
