"""`chorus dev | migrate | token`.

``chorus dev`` is the one-command embedded run: PostgreSQL and the broker from wheels, every
migration, the five services and the gateway as child processes with prefixed logs; on the
first start it creates the district ``hq`` ("Headquarters") that its dev token names. Ctrl-C (or
SIGTERM) stops the children, then the broker, then PostgreSQL; children also die with this
process if it is killed outright (PR_SET_PDEATHSIG), and a PostgreSQL left running by a killed run
is stopped at the next start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from chorus.embedded import EmbeddedBroker, EmbeddedPostgres, die_with_parent
from chorus.inventory_cli import add_inventory_commands

SERVICES = ("inventory", "calendar", "approvals", "metrics", "webhooks")
STATE_DIR = Path(os.environ.get("CHORUS_STATE_DIR", ".chorus"))
DEV_DISTRICT = "hq"
# The district the dev token names, made on the first start (see ensure_dev_district).
DEV_DISTRICT_BODY = {"id": DEV_DISTRICT, "name": "Headquarters", "kind": "region"}
READY_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class DevPorts:
    gateway: int
    postgres: int
    broker: int
    services: dict[str, int]

    @classmethod
    def from_env(cls) -> DevPorts:
        base = int(os.environ.get("CHORUS_DEV_SERVICE_PORT_BASE", "8101"))
        return cls(
            gateway=int(os.environ.get("CHORUS_DEV_GATEWAY_PORT", "8000")),
            postgres=int(os.environ.get("CHORUS_DEV_POSTGRES_PORT", "54329")),
            broker=int(os.environ.get("CHORUS_DEV_BROKER_PORT", "19092")),
            services={name: base + i for i, name in enumerate(SERVICES)},
        )

    def all(self) -> dict[str, int]:
        return {
            "gateway": self.gateway,
            "postgres": self.postgres,
            "broker": self.broker,
            **self.services,
        }


def dev_secrets(state_dir: Path) -> dict[str, str]:
    """Random keys made on the first run and kept with the data, so tokens survive restarts."""
    path = state_dir / "dev-secrets.json"
    if path.exists():
        loaded: dict[str, str] = json.loads(path.read_text())
        return loaded
    state_dir.mkdir(parents=True, exist_ok=True)
    values = {"internal_key": secrets.token_urlsafe(32), "jwt_secret": secrets.token_urlsafe(32)}
    path.write_text(json.dumps(values))
    path.chmod(0o600)
    return values


def service_env(name: str, database_url: str, bootstrap: str, internal_key: str) -> dict[str, str]:
    prefix = name.upper()
    return {
        f"{prefix}_DATABASE_URL": database_url,
        f"{prefix}_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        # The embedded broker has no idempotent producer.
        f"{prefix}_KAFKA_ENABLE_IDEMPOTENCE": "false",
        f"{prefix}_INTERNAL_KEY": internal_key,
    }


def gateway_env(ports: DevPorts, internal_key: str, jwt_secret: str) -> dict[str, str]:
    env = {"GATEWAY_INTERNAL_KEY": internal_key, "GATEWAY_JWT_SECRET": jwt_secret}
    for name, port in ports.services.items():
        env[f"GATEWAY_{name.upper()}_URL"] = f"http://127.0.0.1:{port}"
    return env


def uvicorn_command(app_factory: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app_factory,
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--timeout-graceful-shutdown",
        "10",
    ]


class Supervisor:
    """Child processes with prefixed output; stops them all when one dies or on a signal."""

    def __init__(self) -> None:
        self.children: list[tuple[str, asyncio.subprocess.Process]] = []
        self.pumps: list[asyncio.Task[None]] = []
        self.stopping = asyncio.Event()
        self.width = 10

    async def start(self, name: str, command: list[str], env: dict[str, str]) -> None:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, **env},
            start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
            preexec_fn=die_with_parent,
        )
        self.children.append((name, process))
        self.pumps.append(asyncio.create_task(self._pump(name, process)))

    async def _pump(self, name: str, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        prefix = f"{name:<{self.width}}| "
        async for line in process.stdout:
            sys.stdout.write(prefix + line.decode(errors="replace"))
            sys.stdout.flush()
        code = await process.wait()
        if not self.stopping.is_set():
            print(f"chorus: {name} exited with {code}; stopping everything", flush=True)
            self.stopping.set()

    async def stop(self) -> None:
        self.stopping.set()
        for _name, process in reversed(self.children):
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
        for name, process in reversed(self.children):
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                print(f"chorus: {name} did not stop; killing it", flush=True)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        await asyncio.gather(*self.pumps, return_exceptions=True)


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


async def wait_ready(urls: dict[str, str], stopping: asyncio.Event) -> bool:
    import aiohttp

    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    pending = dict(urls)
    async with aiohttp.ClientSession() as http:
        while pending and time.monotonic() < deadline and not stopping.is_set():
            for name, url in list(pending.items()):
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                        if resp.status == 200:
                            del pending[name]
            if pending:
                await asyncio.sleep(0.3)
    if pending:
        print(f"chorus: not ready after {READY_TIMEOUT_SECONDS}s: {', '.join(pending)}")
    return not pending


def command_dev(args: argparse.Namespace) -> int:
    from chassis.migrations import upgrade

    ports = DevPorts.from_env()
    busy = [f"{name} ({port})" for name, port in ports.all().items() if port_in_use(port)]
    if busy:
        print(
            f"chorus: ports already in use: {', '.join(busy)}. Is another `chorus dev` running?"
            " Set CHORUS_DEV_*_PORT to move them.",
            file=sys.stderr,
        )
        return 1
    state = STATE_DIR.resolve()
    keys = dev_secrets(state)
    postgres = EmbeddedPostgres(state / "postgres" / "data", port=ports.postgres)
    broker = EmbeddedBroker(state / "broker", port=ports.broker)
    print(
        f"chorus: starting PostgreSQL on 127.0.0.1:{ports.postgres} (data in {postgres.data_dir})",
        flush=True,
    )
    postgres.start()
    try:
        for name in SERVICES:
            database_url = postgres.url(f"chorus_{name}")
            print(f"chorus: migrating {name}", flush=True)
            upgrade(name, database_url)
        return asyncio.run(_supervise(ports, postgres, broker, keys))
    finally:
        print("chorus: stopping PostgreSQL", flush=True)
        postgres.stop()


async def _supervise(
    ports: DevPorts,
    postgres: EmbeddedPostgres,
    broker: EmbeddedBroker,
    keys: dict[str, str],
) -> int:
    from gateway.auth import issue_dev_token

    supervisor = Supervisor()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, supervisor.stopping.set)
    try:
        await supervisor.start("broker", broker.command(), {})
        for name, port in ports.services.items():
            env = service_env(
                name,
                postgres.url(f"chorus_{name}"),
                broker.bootstrap_servers,
                keys["internal_key"],
            )
            await supervisor.start(
                name, uvicorn_command(f"services.{name}.app:create_app", port), env
            )
        await supervisor.start(
            "gateway",
            uvicorn_command("gateway.app:create_app", ports.gateway),
            gateway_env(ports, keys["internal_key"], keys["jwt_secret"]),
        )
        urls = {name: f"http://127.0.0.1:{port}/readyz" for name, port in ports.services.items()}
        urls["gateway"] = f"http://127.0.0.1:{ports.gateway}/readyz"
        if await wait_ready(urls, supervisor.stopping):
            token = issue_dev_token(
                keys["jwt_secret"],
                sub="dev",
                name="Dev user",
                grants=[f"{DEV_DISTRICT}:regional_manager"],
            )
            gateway = f"http://127.0.0.1:{ports.gateway}"
            await ensure_dev_district(gateway, token)
            print(
                f"\nchorus: ready. Gateway: {gateway}\n"
                f"chorus: dev token (regional_manager on '{DEV_DISTRICT}', 12 h):\n{token}\n"
                f"chorus: try: curl -H 'Authorization: Bearer {token}' {gateway}/api/inventory/me\n"
                "chorus: Ctrl-C stops everything.\n",
                flush=True,
            )
        await supervisor.stopping.wait()
        return 0 if all(p.returncode in (None, 0) for _, p in supervisor.children) else 1
    finally:
        print("chorus: stopping services", flush=True)
        await supervisor.stop()


async def ensure_dev_district(gateway: str, token: str) -> bool:
    """Create the district the dev token names, so a new user's first calls find it.

    It goes through inventory's own API (through the gateway, with the dev token, as a user
    would), so the creation is audited and `district.created` is published through the
    outbox: the other services' replicas learn it like any district. On a later start with
    the same data folder it exists already; inventory answers 409 district-exists and nothing
    is created twice. Anything else is printed, and the run goes on (the user can create it
    themselves)."""
    import aiohttp

    try:
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{gateway}/api/inventory/districts",
                json=DEV_DISTRICT_BODY,
                headers={"Authorization": f"Bearer {token}"},
                timeout=aiohttp.ClientTimeout(total=30),
            ) as response,
        ):
            body = await response.text()
    except (aiohttp.ClientError, TimeoutError) as exc:
        print(f"chorus: could not create district '{DEV_DISTRICT}': {exc!r}", flush=True)
        return False
    if response.status == 201:
        print(f"chorus: created district '{DEV_DISTRICT}' (Headquarters)", flush=True)
        return True
    if response.status == 409 and "district-exists" in body:
        return True  # made by an earlier start with this data folder
    print(
        f"chorus: could not create district '{DEV_DISTRICT}': HTTP {response.status} {body}",
        flush=True,
    )
    return False


def command_migrate(args: argparse.Namespace) -> int:
    from importlib import import_module

    from chassis.migrations import upgrade

    names = [args.service] if args.service else list(SERVICES)
    for name in names:
        settings_class = getattr(
            import_module(f"services.{name}.settings"), f"{name.capitalize()}Settings"
        )
        url = os.environ.get(
            f"{name.upper()}_DATABASE_URL", settings_class.model_fields["database_url"].default
        )
        print(f"chorus: migrating {name}")
        upgrade(name, url, args.revision)
    return 0


def command_token(args: argparse.Namespace) -> int:
    from gateway.auth import issue_dev_token

    secret = os.environ.get("GATEWAY_JWT_SECRET") or dev_secrets(STATE_DIR.resolve())["jwt_secret"]
    for grant in args.grant:
        district, sep, role = grant.rpartition(":")
        if not sep or not district or not role:
            print(f"chorus: a grant is district:role, not {grant!r}", file=sys.stderr)
            return 2
    print(issue_dev_token(secret, sub=args.user, grants=args.grant, name=args.name, ttl=args.ttl))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chorus", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    dev = commands.add_parser("dev", help="run all of Chorus on embedded PostgreSQL and broker")
    dev.set_defaults(func=command_dev)
    migrate = commands.add_parser("migrate", help="run database migrations")
    migrate.add_argument("service", nargs="?", choices=SERVICES)
    migrate.add_argument("--revision", default="head")
    migrate.set_defaults(func=command_migrate)
    token = commands.add_parser("token", help="issue a dev JWT for the embedded run")
    token.add_argument("--user", required=True)
    token.add_argument("--name")
    token.add_argument("--grant", action="append", default=[], metavar="DISTRICT:ROLE")
    token.add_argument("--ttl", type=int, default=12 * 3600, help="seconds")
    token.set_defaults(func=command_token)
    add_inventory_commands(commands)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
