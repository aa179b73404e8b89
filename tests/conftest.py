"""The test session's infrastructure: a real PostgreSQL and a real Kafka-protocol broker.

By default the session starts the embedded ones (the same wheels as `chorus dev`). To use
servers of your own, name them:
  CHORUS_TEST_POSTGRES_URL   e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
  CHORUS_TEST_KAFKA_BOOTSTRAP e.g. 127.0.0.1:9092 (and CHORUS_TEST_KAFKA_IDEMPOTENCE=true for
                              a real Kafka)
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from chassis.migrations import upgrade
from chassis.outbox import asyncpg_dsn
from chorus.embedded import EmbeddedBroker, EmbeddedPostgres

INTERNAL_KEY = "test-internal-key-" + uuid.uuid4().hex


@dataclass
class Infrastructure:
    server_url: str  # SQLAlchemy URL of the server's maintenance database
    bootstrap_servers: str
    idempotence: bool

    def database_url(self, name: str) -> str:
        return make_url(self.server_url).set(database=name).render_as_string(hide_password=False)

    async def admin(self) -> asyncpg.Connection:
        return await asyncpg.connect(asyncpg_dsn(self.server_url))

    async def create_database(self, name: str, template: str | None = None) -> str:
        conn = await self.admin()
        try:
            clause = f' TEMPLATE "{template}"' if template else ""
            await conn.execute(f'CREATE DATABASE "{name}"{clause}')
        finally:
            await conn.close()
        return self.database_url(name)


@pytest.fixture(scope="session")
def infrastructure() -> Iterator[Infrastructure]:
    server_url = os.environ.get("CHORUS_TEST_POSTGRES_URL")
    bootstrap = os.environ.get("CHORUS_TEST_KAFKA_BOOTSTRAP")
    work = Path(tempfile.mkdtemp(prefix="chorus-test-"))
    postgres = broker = None
    try:
        if not server_url:
            postgres = EmbeddedPostgres(work / "pg" / "data", durable=False)
            postgres.start()
            server_url = postgres.url("postgres")
        if not bootstrap:
            broker = EmbeddedBroker(work / "broker")
            broker.start()
            bootstrap = broker.bootstrap_servers
        idempotence = os.environ.get("CHORUS_TEST_KAFKA_IDEMPOTENCE", "false") == "true"
        yield Infrastructure(server_url, bootstrap, idempotence)
    finally:
        if broker is not None:
            broker.stop()
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(work, ignore_errors=True)


_templates: dict[str, str] = {}
_template_lock = asyncio.Lock()


async def migrated_database(infrastructure: Infrastructure, service: str) -> str:
    """A fresh database of `service` at its latest migration, cloned from a template migrated
    once per session (a clone takes milliseconds, migrating takes much longer)."""
    async with _template_lock:
        if service not in _templates:
            template = f"template_{service}_{uuid.uuid4().hex[:8]}"
            url = await infrastructure.create_database(template)
            await asyncio.to_thread(upgrade, service, url)
            _templates[service] = template
    name = f"{service}_{uuid.uuid4().hex[:12]}"
    return await infrastructure.create_database(name, template=_templates[service])
