"""What the service benchmarks share: a service app on the embedded stack (durable
PostgreSQL and the broker, as `chorus dev` runs them), principal headers, timing.

The app runs in-process (httpx ASGITransport), so figures are the service and its database
without the network hop.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from importlib import import_module
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from chassis.migrations import upgrade
from chassis.principal import PRINCIPAL_HEADER, sign_principal
from chorus.embedded import EmbeddedBroker, EmbeddedPostgres

INTERNAL_KEY = "bench-internal-key-" + uuid.uuid4().hex


def principal(user: str, grants: dict[str, list[str]]) -> dict[str, str]:
    header = sign_principal(INTERNAL_KEY.encode(), sub=user, grants=grants, ttl=3600)
    return {PRINCIPAL_HEADER: header}


@contextlib.asynccontextmanager
async def embedded_app(
    service: str, *, durable: bool = True, **settings: Any
) -> AsyncIterator[Any]:
    """The service's app (HTTP only) on a fresh migrated database of an embedded stack."""
    work = Path(tempfile.mkdtemp(prefix=f"chorus-bench-{service}-"))
    postgres = EmbeddedPostgres(work / "pg" / "data", durable=durable)
    broker = EmbeddedBroker(work / "broker")
    postgres.start()
    broker.start()
    try:
        url = postgres.url(f"bench_{service}")
        await asyncio.to_thread(upgrade, service, url)
        settings_class = getattr(
            import_module(f"services.{service}.settings"), f"{service.capitalize()}Settings"
        )
        app = import_module(f"services.{service}.app").create_app(
            settings_class(
                database_url=url,
                internal_key=INTERNAL_KEY,
                process_role="web",
                kafka_bootstrap_servers=broker.bootstrap_servers,
                kafka_enable_idempotence=False,
                log_level="WARNING",
                **settings,
            )
        )
        async with app.router.lifespan_context(app):
            yield app
    finally:
        broker.stop()
        postgres.stop()
        shutil.rmtree(work, ignore_errors=True)


def client_of(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://service", timeout=600
    )


async def timed_gets(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], n: int
) -> list[float]:
    """Milliseconds of `n` sequential GETs."""
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        response = await client.get(url, headers=headers)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    return samples


def p50_p95(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[max(0, int(len(ordered) * 0.95) - 1)]


async def vacuum_analyze(app: Any) -> None:
    async with app.state.engine.connect() as conn:
        await conn.execute(text("COMMIT"))  # VACUUM cannot run inside a transaction
        await conn.execute(text("VACUUM ANALYZE"))
