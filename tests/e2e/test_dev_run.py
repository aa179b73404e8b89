"""`chorus dev` end to end, as a newcomer runs it: embedded PostgreSQL and broker, migrations,
the five services and the gateway as real processes; a request with the printed token is
served, one without is refused, and Ctrl-C leaves no process behind."""

from __future__ import annotations

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
from pathlib import Path

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


def test_chorus_dev_serves_through_the_gateway_and_stops_cleanly() -> None:
    state = Path(tempfile.mkdtemp(prefix="chorus-dev-e2e-"))
    base = free_port_block(len(SERVICES) + 3)
    ports = {
        "CHORUS_DEV_SERVICE_PORT_BASE": base,
        "CHORUS_DEV_GATEWAY_PORT": base + len(SERVICES),
        "CHORUS_DEV_POSTGRES_PORT": base + len(SERVICES) + 1,
        "CHORUS_DEV_BROKER_PORT": base + len(SERVICES) + 2,
    }
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
        with httpx.Client(timeout=10) as http:
            for service in SERVICES:
                served = http.get(
                    f"{gateway}/api/{service}/me",
                    headers={"Authorization": f"Bearer {token.group(1)}"},
                )
                assert served.status_code == 200, served.text
                assert served.json()["service"] == service
                assert served.json()["districts"] == {"hq": ["regional_manager"]}
            refused = http.get(f"{gateway}/api/inventory/me")
            assert refused.status_code == 401
            assert refused.headers["content-type"] == "application/problem+json"
    finally:
        process.send_signal(signal.SIGINT)  # what Ctrl-C sends
        try:
            code = process.wait(90)
        finally:
            if process.poll() is None:
                process.kill()
        reader.join(5)
    assert code == 0, "".join(lines[-30:])
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
