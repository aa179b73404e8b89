"""Schemathesis over the OpenAPI documents of inventory, calendar and approvals: no generated
request, valid or not, gets a 5xx.

Each service runs for real: a uvicorn process (HTTP only) on a fresh migrated database of the
test session's PostgreSQL, seeded with a small organisation (tests/fuzz/organisation.py).
Schemathesis runs as its own command against it, so its synchronous client never blocks the
session's event loop, with a principal holding every role on the top district (re-signed as
it expires) and the seeded ids mixed into what it generates (tests/fuzz/hooks.py).

The number of examples and the seed are bounded settings (tests/fuzz/conftest.py) and are
printed; a failure lists each 5xx with the curl command that reproduces it, then the
tracebacks the service logged.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from chorus.embedded import die_with_parent
from tests.conftest import INTERNAL_KEY, Infrastructure, migrated_database
from tests.fuzz.conftest import FuzzSettings
from tests.fuzz.organisation import FUZZER, SEEDS, Known, seeding_app

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
HOOKS = Path(__file__).with_name("hooks.py")
SERVICES = ("inventory", "calendar", "approvals")
# The whole schemathesis run of one service; far above what the default count takes.
RUN_TIMEOUT_SECONDS = 1800
TRACEBACK_LINES = 16


@dataclass
class Target:
    service: str
    database_url: str
    settings: dict[str, Any]
    known: Known


def service_settings(service: str, work: Path) -> dict[str, Any]:
    """Settings of the fuzzed service beyond the database, broker and key."""
    if service == "calendar":
        return {"asset_dir": work / "assets"}
    if service == "inventory":
        # The probes of availability checks go to a closed local port (see seed_inventory);
        # a short timeout bounds them all the same.
        return {"availability_probe_timeout_seconds": 0.5}
    return {}


@pytest_asyncio.fixture(params=SERVICES)
async def target(
    request: pytest.FixtureRequest, infrastructure: Infrastructure, tmp_path: Path
) -> Target:
    service: str = request.param
    database_url = await migrated_database(infrastructure, service)
    settings = service_settings(service, tmp_path)
    async with seeding_app(infrastructure, service, database_url, **settings) as running:
        known = await SEEDS[service](running)
    return Target(service, database_url, settings, known)


def service_env(target: Target, infrastructure: Infrastructure) -> dict[str, str]:
    values = {
        "database_url": target.database_url,
        "kafka_bootstrap_servers": infrastructure.bootstrap_servers,
        "kafka_enable_idempotence": str(infrastructure.idempotence).lower(),
        "internal_key": INTERNAL_KEY,
        "process_role": "web",
        **target.settings,
    }
    prefix = target.service.upper()
    return {f"{prefix}_{name.upper()}": str(value) for name, value in values.items()}


@contextlib.contextmanager
def serve(service: str, env: dict[str, str], log_path: Path) -> Iterator[str]:
    """The service's app under uvicorn in a child process; yields its base URL.

    uvicorn binds a port of the kernel's choosing (so none is taken from under it) and logs
    it. Not a socket handed over with --fd: uvicorn takes that for a Unix socket, so its
    connections miss TCP_NODELAY and every response waits out a delayed ACK (40 ms)."""
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        f"services.{service}.app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--no-access-log",
        "--timeout-graceful-shutdown",
        "5",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
    try:
        yield wait_until_serving(process, log_path)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


LISTENING = re.compile(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")


def wait_until_serving(process: subprocess.Popen[bytes], log_path: Path) -> str:
    """The base URL, once the service says where it listens and answers there."""
    deadline = time.monotonic() + 60
    with httpx.Client(timeout=2) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"the service exited:\n{log_path.read_text()[-4000:]}")
            listening = LISTENING.search(log_path.read_text(errors="replace"))
            if listening:
                with contextlib.suppress(httpx.HTTPError):
                    if http.get(f"{listening[1]}/healthz").status_code == 200:
                        return listening[1]
            time.sleep(0.2)
    pytest.fail(f"the service did not serve within 60 s:\n{log_path.read_text()[-4000:]}")


def schemathesis_command(base_url: str, settings: FuzzSettings) -> list[str]:
    return [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--no-color",
        "run",
        f"{base_url}/openapi.json",
        # The document's server is the service as the gateway exposes it (/api/<service>);
        # the fuzzer talks to the bare service.
        "--url",
        base_url,
        "--checks",
        "not_a_server_error",
        "--max-examples",
        str(settings.examples),
        "--seed",
        str(settings.seed),
        # Liveness and readiness take no input; a 503 from readiness is its documented answer.
        "--exclude-tag",
        "operations",
        # Nothing kept between runs: the same seed gives the same cases.
        "--generation-database",
        "none",
        "--request-timeout",
        "30",
        *os.environ.get("CHORUS_FUZZ_OPTIONS", "").split(),
    ]


def logged_errors(log_path: Path) -> list[str]:
    """The error lines of the service's JSON log, each distinct traceback once."""
    found: dict[str, str] = {}
    for line in log_path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("level") not in ("ERROR", "CRITICAL"):
            continue
        lines = (entry.get("exception") or "").strip().splitlines()
        # The cause is at the bottom; the frames above it are mostly the framework's.
        cause = lines[-1] if lines else entry.get("message", "")
        found.setdefault(cause, "\n".join([entry.get("message", ""), *lines[-TRACEBACK_LINES:]]))
    return list(found.values())


def served_statuses(log_path: Path) -> list[int]:
    """The status of every request the service's access log records."""
    statuses = []
    for line in log_path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("logger") == "chorus.access":
            *_, status, _duration = str(entry.get("message", "")).split(" ")
            if status.isdigit():
                statuses.append(int(status))
    return statuses


def failure_report(output: str, log_path: Path) -> str:
    start = output.find("FAILURES")
    failures = output[start:] if start >= 0 else output[-20000:]
    errors = logged_errors(log_path)
    tracebacks = "\n\n".join(errors) if errors else "(none logged)"
    return f"{failures}\n\nService tracebacks ({len(errors)} distinct):\n{tracebacks}"


def test_no_generated_request_gets_a_server_error(
    target: Target,
    infrastructure: Infrastructure,
    fuzz_settings: FuzzSettings,
    tmp_path: Path,
) -> None:
    log_path = tmp_path / f"{target.service}.log"
    fuzz_env = {
        "SCHEMATHESIS_HOOKS": str(HOOKS),
        "PYTHONPATH": str(ROOT),
        "CHORUS_FUZZ_INTERNAL_KEY": INTERNAL_KEY,
        "CHORUS_FUZZ_PRINCIPAL": json.dumps(FUZZER),
        "CHORUS_FUZZ_KNOWN": json.dumps(target.known),
    }
    with serve(target.service, service_env(target, infrastructure), log_path) as base_url:
        started = time.monotonic()
        run = subprocess.run(
            schemathesis_command(base_url, fuzz_settings),
            cwd=tmp_path,  # where schemathesis may write, never the checkout
            env={**os.environ, **fuzz_env},
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_SECONDS,
            check=False,
        )
    output = run.stdout + run.stderr
    (tmp_path / "schemathesis.txt").write_text(output)
    fuzz_settings.runs.append(
        f"{target.service}: seed {fuzz_settings.seed}, {fuzz_settings.examples} examples per "
        f"operation, exit {run.returncode} in {time.monotonic() - started:.0f} s"
    )
    # A run that only met 404s (a wrong base URL) or 401s (no principal) tested nothing.
    statuses = served_statuses(log_path)
    assert any(200 <= status < 300 for status in statuses), (
        f"{target.service}: no generated request was served (statuses {sorted(set(statuses))})"
    )
    if run.returncode != 0:
        pytest.fail(
            f"schemathesis found failures in {target.service} "
            f"(replay with {fuzz_settings.replay()}; the whole output and the service log are "
            f"in {tmp_path}):\n{failure_report(output, log_path)}",
            pytrace=False,
        )
