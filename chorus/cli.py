"""`chorus dev | migrate | token`.

``chorus dev`` is the one-command embedded run: PostgreSQL and the broker from wheels, every
migration, the five services and the gateway as child processes with prefixed logs; on the
first start it creates the district ``hq`` ("Headquarters") that its dev token names. Ctrl-C (or
SIGTERM) stops the children, then the broker, then PostgreSQL; children also die with this
process if it is killed outright (PR_SET_PDEATHSIG), and a PostgreSQL left running by a killed run
is stopped at the next start.

Its state folder (``--state-dir``, else ``CHORUS_STATE_DIR``, else ``.chorus`` in the current
directory) keeps the data and ``dev-secrets.json``, the keys made on the first start.
``chorus token`` signs with the gateway's secret of that run and never makes one: it reads
``GATEWAY_JWT_SECRET``, else the ``dev-secrets.json`` of the same state folder (a relative one
looked for in the current directory and each one above it, as git finds ``.git``), else refuses.
Its grants are checked against the roles and the district id form the services know.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from chassis.principal import DISTRICT_ID_PATTERN, ROLES
from chorus.embedded import EmbeddedBroker, EmbeddedPostgres, die_with_parent
from chorus.inventory_cli import add_inventory_commands

SERVICES = ("inventory", "calendar", "approvals", "metrics", "webhooks")
STATE_DIR_VARIABLE = "CHORUS_STATE_DIR"
DEFAULT_STATE_DIR = Path(".chorus")
DEV_SECRETS_FILE = "dev-secrets.json"
JWT_SECRET_VARIABLE = "GATEWAY_JWT_SECRET"
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


def state_dir_setting(explicit: Path | None) -> Path:
    """The state folder as given: ``--state-dir``, else ``CHORUS_STATE_DIR``, else
    ``.chorus``; a relative one is relative to the current directory."""
    if explicit is not None:
        return explicit
    return Path(os.environ.get(STATE_DIR_VARIABLE) or DEFAULT_STATE_DIR)


def dev_secrets(state_dir: Path) -> dict[str, str]:
    """Random keys made on the first run and kept with the data, so tokens survive restarts."""
    path = state_dir / DEV_SECRETS_FILE
    if path.exists():
        loaded: dict[str, str] = json.loads(path.read_text())
        return loaded
    state_dir.mkdir(parents=True, exist_ok=True)
    values = {"internal_key": secrets.token_urlsafe(32), "jwt_secret": secrets.token_urlsafe(32)}
    path.write_text(json.dumps(values))
    path.chmod(0o600)
    return values


def service_env(
    name: str, database_url: str, bootstrap: str, internal_key: str, *, public_base_url: str
) -> dict[str, str]:
    """A service's environment in the embedded run; `public_base_url` is the gateway's own URL,
    which starts every link the service returns."""
    prefix = name.upper()
    return {
        f"{prefix}_DATABASE_URL": database_url,
        f"{prefix}_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        # The embedded broker has no idempotent producer.
        f"{prefix}_KAFKA_ENABLE_IDEMPOTENCE": "false",
        f"{prefix}_INTERNAL_KEY": internal_key,
        f"{prefix}_PUBLIC_BASE_URL": public_base_url,
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
    state = state_dir_setting(args.state_dir).resolve()
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
        return asyncio.run(_supervise(ports, state, postgres, broker, keys))
    finally:
        print("chorus: stopping PostgreSQL", flush=True)
        postgres.stop()


async def _supervise(
    ports: DevPorts,
    state: Path,
    postgres: EmbeddedPostgres,
    broker: EmbeddedBroker,
    keys: dict[str, str],
) -> int:
    from gateway.auth import issue_dev_token

    supervisor = Supervisor()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, supervisor.stopping.set)
    gateway = f"http://127.0.0.1:{ports.gateway}"
    try:
        await supervisor.start("broker", broker.command(), {})
        for name, port in ports.services.items():
            env = service_env(
                name,
                postgres.url(f"chorus_{name}"),
                broker.bootstrap_servers,
                keys["internal_key"],
                public_base_url=gateway,
            )
            # The services keep their files (calendar's assets) in the same state folder.
            env[STATE_DIR_VARIABLE] = str(state)
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


class TokenRefused(Exception):
    """`chorus token` cannot issue a token that would be right; the message says why."""


def parse_grants(values: list[str]) -> list[str]:
    """The ``district:role`` grants of the ``--grant`` values, each one grant or several
    separated by commas; duplicates merged, first order kept. Blank items are skipped."""
    grants: dict[str, None] = {}
    problems: list[str] = []
    for value in values:
        for raw in value.split(","):
            item = raw.strip()
            if not item:
                continue
            district, sep, role = item.partition(":")
            if not sep or not district or not role:
                problems.append(f"grant {item!r}: not district:role")
            elif not re.fullmatch(DISTRICT_ID_PATTERN, district):
                problems.append(
                    f"grant {item!r}: {district!r} is not a district id"
                    f" (one matches {DISTRICT_ID_PATTERN})"
                )
            elif role not in ROLES:
                problems.append(f"grant {item!r}: {role!r} is not a role")
            else:
                grants[f"{district}:{role}"] = None
    if problems:
        problems.append(
            "a grant is district:role, several separated by commas; the roles are "
            + ", ".join(ROLES)
        )
        raise TokenRefused("\n".join(problems))
    return list(grants)


def dev_secrets_places(state_dir: Path) -> list[Path]:
    """Where the ``dev-secrets.json`` of a `chorus dev` run on this state folder can be,
    nearest first: the folder itself when absolute; when relative, under the current
    directory and under each directory above it, so a token asked for anywhere in the
    checkout finds the run that `make run` started at its top."""
    name = state_dir / DEV_SECRETS_FILE
    if state_dir.is_absolute():
        return [name]
    here = Path.cwd()
    return [folder / name for folder in (here, *here.parents)]


def read_jwt_secret(path: Path) -> str:
    try:
        secret = json.loads(path.read_text()).get("jwt_secret")
    except (OSError, ValueError, AttributeError) as exc:
        raise TokenRefused(f"cannot read the dev secrets in {path}: {exc}") from exc
    if not isinstance(secret, str) or not secret:
        raise TokenRefused(f"{path} holds no jwt_secret; remove it and restart `chorus dev`")
    return secret


def token_secret(state_dir: Path) -> str:
    """The secret the gateway verifies tokens with: ``GATEWAY_JWT_SECRET``, else the
    ``jwt_secret`` that `chorus dev` keeps in its state folder. Reads only: a secret made
    here would be one no running gateway knows, and its tokens would all be refused."""
    places = dev_secrets_places(state_dir)
    found = next((path for path in places if path.is_file()), None)
    from_environment = os.environ.get(JWT_SECRET_VARIABLE)
    if from_environment:
        # A variable left over in this shell would sign for another gateway than the
        # embedded run found here (`chorus dev` does not read it): say so, and obey it.
        with contextlib.suppress(TokenRefused):
            if found is not None and read_jwt_secret(found) != from_environment:
                print(
                    f"chorus: note: {JWT_SECRET_VARIABLE} is set and signs this token; the"
                    f" `chorus dev` run of {found.parent} uses another secret and will refuse"
                    " it (unset the variable to sign for that run)",
                    file=sys.stderr,
                )
        return from_environment
    if found is not None:
        return read_jwt_secret(found)
    where = (
        str(places[0])
        if state_dir.is_absolute()
        else f"{state_dir / DEV_SECRETS_FILE} in {Path.cwd()} and every directory above it"
    )
    raise TokenRefused(
        "no running Chorus found: no dev secret to sign with.\n"
        f"looked for {JWT_SECRET_VARIABLE} (not set) and for {where}.\n"
        "run `chorus token` from the checkout where `make run` (`chorus dev`) runs, with the"
        f" same --state-dir or {STATE_DIR_VARIABLE} if it had one; or set"
        f" {JWT_SECRET_VARIABLE} to the secret of the gateway the token is for."
    )


def command_token(args: argparse.Namespace) -> int:
    from gateway.auth import issue_dev_token

    try:
        grants = parse_grants(args.grant)
        secret = token_secret(state_dir_setting(args.state_dir))
    except TokenRefused as refusal:
        for line in str(refusal).splitlines():
            print(f"chorus: {line}", file=sys.stderr)
        return 2
    print(issue_dev_token(secret, sub=args.user, grants=grants, name=args.name, ttl=args.ttl))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chorus", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    state_dir_help = (
        f"the folder of the embedded run's data and secrets (default: ${STATE_DIR_VARIABLE},"
        f" else {DEFAULT_STATE_DIR})"
    )
    dev = commands.add_parser("dev", help="run all of Chorus on embedded PostgreSQL and broker")
    dev.add_argument("--state-dir", type=Path, help=state_dir_help)
    dev.set_defaults(func=command_dev)
    migrate = commands.add_parser("migrate", help="run database migrations")
    migrate.add_argument("service", nargs="?", choices=SERVICES)
    migrate.add_argument("--revision", default="head")
    migrate.set_defaults(func=command_migrate)
    token = commands.add_parser(
        "token",
        help="issue a dev JWT for the embedded run",
        description=(
            "Print an HS256 token for the gateway of the embedded run. It is signed with"
            f" ${JWT_SECRET_VARIABLE} if set, else with the secret `chorus dev` keeps in"
            f" {DEV_SECRETS_FILE} of its state folder (a relative one is looked for here and in"
            " every directory above, so any folder of the checkout works); with neither, it"
            " refuses (exit 2). It never makes a secret and writes nothing."
        ),
    )
    token.add_argument("--user", required=True, help="the user id (the token's sub)")
    token.add_argument("--name", help="the user's display name")
    token.add_argument(
        "--grant",
        action="append",
        default=[],
        metavar="DISTRICT:ROLE[,...]",
        help=(
            "a role on a district (and the districts below it); repeat it or separate several"
            f" by commas, e.g. hq:regional_manager,france:viewer. Roles: {', '.join(ROLES)}"
        ),
    )
    token.add_argument("--ttl", type=int, default=12 * 3600, help="seconds (default: 12 h)")
    token.add_argument(
        "--state-dir", type=Path, help=state_dir_help + "; the same as `chorus dev` was given"
    )
    token.set_defaults(func=command_token)
    add_inventory_commands(commands)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
