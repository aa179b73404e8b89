"""The benchmark kit: every figure is printed beside its floor and the ratio, the floors run
what they say they run, a bench prints no logs, and the outbox bench tells events still on
their way from lost ones.

The benches themselves are not run here (minutes each); what they share is.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

from bench.benchkit import (
    NOISY_LOGGERS,
    Figure,
    WriteShape,
    format_figures,
    quiet_logs,
    raw_connection,
    read_figures,
    recorded_statements,
    replay,
    write_floor,
)
from bench.outbox import PhaseResult, report, wait_drained
from chassis.observability import configure_logging
from tests.conftest import Infrastructure
from tests.inventory.factories import HQ_ADMIN, seed_districts
from tests.kit import RunningService, running_service


@pytest_asyncio.fixture
async def inventory(infrastructure: Infrastructure) -> AsyncIterator[RunningService]:
    """The inventory service (HTTP only) on a fresh database with a few districts."""
    async with running_service(infrastructure, "inventory") as service:
        await seed_districts(service)
        yield service


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def logs() -> Iterator[Collect]:
    """A handler to put on the root logger; logging as it was afterwards (quiet_logs is
    global)."""
    handler = Collect()
    try:
        yield handler
    finally:
        logging.getLogger().removeHandler(handler)
        logging.disable(logging.NOTSET)
        for name in NOISY_LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)


def test_every_figure_is_printed_with_its_floor_and_ratio() -> None:
    table = format_figures(
        "title",
        [
            Figure("search p95", 12.0, "ms", 3.0, "the same 2 SQL statements, raw asyncpg"),
            Figure("import", 100.0, "accounts/s", 400.0, "raw COPY"),
        ],
        ["a note"],
    )
    lines = table.splitlines()
    assert lines[0] == "title"
    assert lines[1].split() == ["figure", "value", "floor", "ratio", "floor", "measured", "as"]
    # A time costs value / floor; a rate costs floor / value: both read "4x the floor".
    assert lines[2].split() == [
        "search", "p95", "12.0", "ms", "3.00", "ms", "4.0x",
        "the", "same", "2", "SQL", "statements,", "raw", "asyncpg",
    ]  # fmt: skip
    assert lines[3].split() == [
        "import", "100", "accounts/s", "400", "accounts/s", "4.0x", "raw", "COPY",
    ]  # fmt: skip
    assert lines[4] == "  a note"


def test_a_write_floor_says_its_shape() -> None:
    shape = WriteShape(reads=0, updates=1, inserts=2)
    assert str(shape) == "1 locked read + 0 reads, 1 update, 2 inserts"


@pytest.mark.asyncio
async def test_a_bench_prints_no_access_log(inventory: RunningService, logs: Collect) -> None:
    configure_logging("inventory", "INFO")  # what create_app does with the default level
    logging.getLogger().addHandler(logs)
    quiet_logs()
    response = await inventory.client.get("/districts", headers=HQ_ADMIN)
    assert response.status_code == 200
    logging.getLogger("chassis.outbox").warning("a warning still shows")
    assert [r.getMessage() for r in logs.records] == ["a warning still shows"]


@pytest.mark.asyncio
async def test_the_read_floor_runs_the_endpoints_own_sql(inventory: RunningService) -> None:
    with recorded_statements(inventory.app.state.engine) as statements:
        response = await inventory.client.get("/districts", headers=HQ_ADMIN)
    assert response.status_code == 200
    districts = {d["id"] for d in response.json()["items"]}
    assert districts == {"hq", "fr", "fr-paris", "de"}
    conn = await raw_connection(inventory.app)
    try:
        # The same statements with the same parameters find the same districts.
        found = [{row["id"] for row in await conn.fetch(s.sql, *s.parameters)} for s in statements]
        assert districts in found
        await replay(conn, statements)
        figures = await read_figures(
            inventory.client, inventory.app, conn, "districts", "/districts", HQ_ADMIN, 5
        )
    finally:
        await conn.close()
    assert [f.name for f in figures] == ["districts  p50", "districts  p95"]
    assert all(f.value > 0 and f.floor > 0 for f in figures)
    assert figures[0].floor_label == f"the same {len(statements)} SQL statements, raw asyncpg"


@pytest.mark.asyncio
async def test_the_write_floor_has_the_requests_shape(inventory: RunningService) -> None:
    with recorded_statements(inventory.app.state.engine) as statements:
        response = await inventory.client.post(
            "/districts",
            json={"id": "it", "name": "Italy", "kind": "district", "parent_id": "hq"},
            headers=HQ_ADMIN,
        )
    assert response.status_code == 201, response.text
    shape = WriteShape.of(statements)
    assert shape.inserts >= 2  # the district, and its audit entry or event
    rate, label = await write_floor(inventory.app.state.settings.database_url, 20, 4, shape)
    assert rate > 0
    assert label.startswith(f"20 raw asyncpg transactions (1 locked read + {shape.reads} read")
    assert f"{shape.inserts} inserts), 4 connections" in label
    # Its scratch tables are gone; the service's tables are as they were.
    leftovers = await inventory.scalar(
        "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'bench_floor%'"
    )
    assert leftovers == 0


def phase(name: str, count: int, arrived: int, **extra: Any) -> PhaseResult:
    result = PhaseResult(name, count, {f"e{i}": 100.0 + i for i in range(count)}, 1.0, None)
    result.latencies = [5.0 + i for i in range(arrived)]
    result.last_effect = 100.0 + count
    for key, value in extra.items():
        setattr(result, key, value)
    return result


def test_events_still_on_their_way_are_not_called_lost(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = type("Args", (), {"no_fsync": False, "stall": 30.0})()
    phases = [
        {"name": "warm-up", "rate": 200, "count": 10},
        {"name": "backlog", "rate": 0, "count": 10, "writers": 2, "relay_paused": True},
    ]
    chassis = [phase("warm-up", 10, 10), phase("backlog", 10, 3, unsent=5, in_flight=2)]
    chassis[1].relay_started = 100.0
    bare = [phase("warm-up", 10, 10), phase("backlog", 10, 10)]
    bare[1].relay_started = 100.0
    report(args, phases, chassis, bare)
    out = capsys.readouterr().out
    assert "lost" not in out
    assert (
        "backlog (chassis): 3 of 10 events reached the consumer; 5 still unsent in the outbox,"
        " 2 sent and not yet consumed" in out
    )
    assert "backlog of 10: drain rate" in out


@pytest.mark.asyncio
async def test_a_phase_waits_for_its_events_then_gives_up_when_they_stop() -> None:
    effects = {"a": 1.0, "b": 2.0}
    await wait_drained({"a": 0.0, "b": 0.0}, effects, stall=60)  # all there: returns at once
    await wait_drained({"a": 0.0, "c": 0.0}, effects, stall=0.2)  # "c" never comes: gives up
