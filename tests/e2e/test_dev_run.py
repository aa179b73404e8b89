"""`chorus dev` end to end, as a newcomer runs it: embedded PostgreSQL and broker, migrations,
the five services and the gateway as real processes; a request with the printed token is
served, one without is refused, a token from `chorus token` in a folder of the checkout is
served too, and Ctrl-C leaves no process behind. The first start creates
the district its token names (through inventory, so its replicas learn it); a restart on the
same data folder neither fails nor creates it twice."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

pytestmark = pytest.mark.slow

SERVICES = ("inventory", "calendar", "approvals", "metrics", "webhooks")


def free_port_block(size: int) -> int:
    """A base port with `size` free ports after it, below the kernel's ephemeral range: a port
    in that range, free when checked, can be taken by any outgoing connection (the services'
    own, to PostgreSQL and the broker) before the child process binds it."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(10_000, low - size)
        if all(_bindable(base + i) for i in range(size)):
            return base
    raise RuntimeError("no block of free ports")


def _free(port: int) -> bool:
    """Nothing listens on the port."""
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def processes_mentioning(*needles: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(needle in cmdline for needle in needles):
            found.append(f"{entry.name}: {cmdline}")
    return found


def dev_ports() -> dict[str, int]:
    base = free_port_block(len(SERVICES) + 3)
    return {
        "CHORUS_DEV_SERVICE_PORT_BASE": base,
        "CHORUS_DEV_GATEWAY_PORT": base + len(SERVICES),
        "CHORUS_DEV_POSTGRES_PORT": base + len(SERVICES) + 1,
        "CHORUS_DEV_BROKER_PORT": base + len(SERVICES) + 2,
    }


@dataclass
class DevRun:
    gateway: str
    token: str
    lines: list[str]


@contextlib.contextmanager
def dev_run(state: Path, ports: dict[str, int]) -> Iterator[DevRun]:
    """`chorus dev` on this data folder and these ports, ready, with its printed token; on
    leaving, Ctrl-C, and it must exit 0 leaving no process and no port behind."""
    env = {**os.environ, "CHORUS_STATE_DIR": str(state), **{k: str(v) for k, v in ports.items()}}
    process = subprocess.Popen(
        [sys.executable, "-m", "chorus.cli", "dev"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read_output() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith("chorus: ready"):
                ready.set()

    reader = threading.Thread(target=read_output, daemon=True)
    reader.start()
    gateway = f"http://127.0.0.1:{ports['CHORUS_DEV_GATEWAY_PORT']}"
    try:
        assert ready.wait(180), "not ready:\n" + "".join(lines[-40:])
        time.sleep(0.2)  # the token follows the ready line
        output = "".join(lines)
        token = re.search(r"dev token[^\n]*\n(\S+)\n", output)
        assert token, output[-2000:]
        yield DevRun(gateway, token.group(1), lines)
    finally:
        process.send_signal(signal.SIGINT)  # what Ctrl-C sends
        try:
            code = process.wait(90)
        finally:
            if process.poll() is None:
                process.kill()
        reader.join(5)
    assert code == 0, "".join(lines[-30:])
    base = ports["CHORUS_DEV_SERVICE_PORT_BASE"]
    all_ports = [
        ports["CHORUS_DEV_GATEWAY_PORT"],
        ports["CHORUS_DEV_POSTGRES_PORT"],
        ports["CHORUS_DEV_BROKER_PORT"],
        *range(base, base + 5),
    ]
    leftovers = processes_mentioning(
        str(state),
        f"127.0.0.1:{ports['CHORUS_DEV_BROKER_PORT']}",
        *(f"--port {p} " for p in all_ports),
    )
    assert leftovers == []
    assert [p for p in all_ports if not _free(p)] == []


def chorus_token(cwd: Path, *argv: str) -> str:
    """`chorus token` as a newcomer runs it in another shell: none of the run's variables."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("CHORUS_STATE_DIR", "GATEWAY_JWT_SECRET")
    }
    result = subprocess.run(
        [sys.executable, "-m", "chorus.cli", "token", *argv],
        cwd=cwd,
        env={**env, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_chorus_dev_serves_through_the_gateway_and_stops_cleanly() -> None:
    checkout = Path(tempfile.mkdtemp(prefix="chorus-dev-e2e-"))
    state = checkout / ".chorus"  # where `make run` keeps it
    (checkout / "services" / "inventory").mkdir(parents=True)
    with dev_run(state, dev_ports()) as run, httpx.Client(timeout=10) as http:
        for service in SERVICES:
            served = http.get(
                f"{run.gateway}/api/{service}/me",
                headers={"Authorization": f"Bearer {run.token}"},
            )
            assert served.status_code == 200, served.text
            assert served.json()["service"] == service
            assert served.json()["districts"] == {"hq": ["regional_manager"]}
        refused = http.get(f"{run.gateway}/api/inventory/me")
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        # Another user's token, asked for in a folder of the checkout: the running gateway
        # verifies it (the run's own secret, found upwards).
        token = chorus_token(
            checkout / "services" / "inventory",
            "--user",
            "ana",
            "--grant",
            "hq:viewer,hq:analyst",
        )
        served = http.get(
            f"{run.gateway}/api/inventory/me", headers={"Authorization": f"Bearer {token}"}
        )
        assert served.status_code == 200, served.text
        assert served.json()["user"] == "ana"
        assert served.json()["districts"] == {"hq": ["analyst", "viewer"]}


# --- the district the dev token names -------------------------------------------------------

# Services that keep a replica of inventory's district tree, fed by its events.
REPLICAS = ("calendar", "approvals")
HQ = {"id": "hq", "name": "Headquarters", "kind": "region", "parent_id": None, "path": "hq"}


async def _query(port: int, database: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(host="127.0.0.1", port=port, user="postgres", database=database)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


def query(ports: dict[str, int], service: str, sql: str) -> list[asyncpg.Record]:
    return asyncio.run(_query(ports["CHORUS_DEV_POSTGRES_PORT"], f"chorus_{service}", sql))


def hq_records(ports: dict[str, int]) -> tuple[int, int]:
    """(audit entries, outbox events) of the creation of district hq in inventory."""
    [audit] = query(
        ports,
        "inventory",
        "SELECT count(*) FROM audit_log WHERE entity_type = 'district' AND entity_id = 'hq'"
        " AND action = 'created'",
    )
    [events] = query(
        ports,
        "inventory",
        "SELECT count(*) FROM outbox WHERE key = 'hq'"
        " AND convert_from(payload, 'UTF8')::jsonb ->> 'type'"
        " = 'chorus.inventory.district.created'",
    )
    return int(audit[0]), int(events[0])


def test_the_first_start_creates_the_dev_district_and_a_restart_keeps_it() -> None:
    state = Path(tempfile.mkdtemp(prefix="chorus-dev-hq-"))
    ports = dev_ports()
    with dev_run(state, ports) as run, httpx.Client(timeout=10) as http:
        auth = {"Authorization": f"Bearer {run.token}"}
        # The first call of a new user with the printed token finds the district.
        found = http.get(f"{run.gateway}/api/inventory/districts/hq", headers=auth)
        assert found.status_code == 200, found.text
        assert {k: found.json()[k] for k in HQ} == HQ
        listed = http.get(f"{run.gateway}/api/inventory/districts", headers=auth)
        assert [d["id"] for d in listed.json()["items"]] == ["hq"]
        assert hq_records(ports) == (1, 1)
        # Published through the outbox: the other services' replicas learn it.
        deadline = time.monotonic() + 60
        pending = set(REPLICAS)
        while pending and time.monotonic() < deadline:
            for service in list(pending):
                rows = query(ports, service, "SELECT id, name, kind FROM districts")
                if [tuple(r) for r in rows] == [("hq", "Headquarters", "region")]:
                    pending.discard(service)
            time.sleep(0.5)
        assert pending == set(), f"no replica of hq in {pending}"
    assert any("created district 'hq'" in line for line in run.lines)
    # A second start on the same data folder: no failure, nothing created twice.
    with dev_run(state, ports) as again, httpx.Client(timeout=10) as http:
        auth = {"Authorization": f"Bearer {again.token}"}
        listed = http.get(f"{again.gateway}/api/inventory/districts", headers=auth)
        assert [d["id"] for d in listed.json()["items"]] == ["hq"]
        assert hq_records(ports) == (1, 1)
        for service in REPLICAS:
            assert len(query(ports, service, "SELECT id FROM districts")) == 1
    assert not any("could not create" in line for line in again.lines), "".join(again.lines)
    assert not any("created district" in line for line in again.lines)
