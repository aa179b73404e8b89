"""`chorus inventory import FILE` against real servers: the inventory service and the gateway
under uvicorn, the command sending the file over TCP with a bearer token."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
import uvicorn
from fastapi import FastAPI

from chorus.cli import main
from gateway.app import create_app as create_gateway
from gateway.auth import issue_dev_token
from gateway.settings import GatewaySettings
from tests.conftest import INTERNAL_KEY, Infrastructure
from tests.gateway.kit import serve
from tests.inventory.factories import HQ_ADMIN
from tests.kit import RunningService, running_service

pytestmark = pytest.mark.asyncio

JWT_SECRET = "cli-test-secret-" + "s" * 16
HEADER = "platform,handle,display_name,district_id,status,owner_primary,tags"


@dataclass
class Stack:
    inventory: RunningService
    gateway: str
    token: str

    async def accounts(self) -> int:
        return int(await self.inventory.scalar("SELECT count(*) FROM accounts"))


@contextlib.asynccontextmanager
async def serve_started(app: FastAPI) -> AsyncIterator[str]:
    """uvicorn for an app whose lifespan already runs (the test's): no second lifespan."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, host="127.0.0.1", log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:  # noqa: ASYNC110 - uvicorn has a flag, not an event
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest_asyncio.fixture
async def stack(infrastructure: Infrastructure) -> AsyncIterator[Stack]:
    async with running_service(infrastructure, "inventory") as inventory:
        for body in (
            {"id": "hq", "name": "Headquarters", "kind": "region"},
            {"id": "fr", "name": "France", "kind": "district", "parent_id": "hq"},
        ):
            response = await inventory.client.post("/districts", json=body, headers=HQ_ADMIN)
            assert response.status_code == 201
        async with serve_started(inventory.app) as inventory_url:
            settings = GatewaySettings(
                internal_key=INTERNAL_KEY, jwt_secret=JWT_SECRET, inventory_url=inventory_url
            )
            async with serve(create_gateway(settings)) as gateway_url:
                token = issue_dev_token(JWT_SECRET, sub="regina", grants=["hq:regional_manager"])
                yield Stack(inventory, gateway_url, token)


async def chorus(*argv: str) -> int:
    # The command is synchronous (httpx.Client); the servers run on this event loop.
    return await asyncio.to_thread(main, list(argv))


def write_csv(path: Path, *lines: str) -> Path:
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return path


async def test_import_shows_progress_and_the_counts(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [f"instagram,acct_{i},Account {i},fr,official,francois,brand|fr" for i in range(4100)]
    path = write_csv(tmp_path / "accounts.csv", *rows)
    code = await chorus(
        "inventory", "import", str(path), "--gateway", stack.gateway, "--token", stack.token
    )
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert out.strip() == "4100 rows: 4100 created, 0 updated, 0 unchanged"
    assert "validating 4100/4100" in err
    assert "writing 2000/4100" in err
    assert "writing 4100/4100" in err
    assert await stack.accounts() == 4100
    # Again: nothing to do.
    assert (
        await chorus(
            "inventory", "import", str(path), "--gateway", stack.gateway, "--token", stack.token
        )
        == 0
    )
    assert capsys.readouterr().out.strip() == "4100 rows: 0 created, 0 updated, 4100 unchanged"


async def test_dry_run_with_the_token_from_the_environment(
    stack: Stack,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHORUS_TOKEN", stack.token)
    path = write_csv(tmp_path / "a.csv", "x,orange,,fr,,,", "x,orange_fr,,hq,,,")
    code = await chorus("inventory", "import", str(path), "--dry-run", "--gateway", stack.gateway)
    out, _ = capsys.readouterr()
    assert code == 0
    assert (
        out.strip()
        == "dry run, nothing written: would be 2 rows: 2 created, 0 updated, 0 unchanged"
    )
    assert await stack.accounts() == 0


async def test_row_errors_are_listed_with_their_lines(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(
        tmp_path / "bad.csv",
        "x,orange,,fr,,,",
        "myspace,tom,,fr,,,",
        "x,orange,,fr,,,",
        "x,ok_too,,fr,sold,,",
    )
    code = await chorus(
        "inventory", "import", str(path), "--gateway", stack.gateway, "--token", stack.token
    )
    out, _ = capsys.readouterr()
    assert code == 1
    assert "3 of 4 rows have errors; nothing was imported" in out
    assert "  line 3, platform: Chorus knows no platform 'myspace'." in out
    assert "  line 4, handle: X 'orange' is already on line 2." in out
    assert "  line 5, status: " in out
    assert await stack.accounts() == 0


async def test_unknown_columns_name_the_known_ones(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "odd.csv"
    path.write_text("platform,handle,district_id,followers\nx,orange,fr,12\n")
    code = await chorus(
        "inventory", "import", str(path), "--gateway", stack.gateway, "--token", stack.token
    )
    out, _ = capsys.readouterr()
    assert code == 1
    assert "Unknown columns: 'followers'." in out
    assert "known columns: platform, handle, profile_url" in out


async def test_a_bad_token_is_refused(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(tmp_path / "a.csv", "x,orange,,fr,,,")
    code = await chorus(
        "inventory", "import", str(path), "--gateway", stack.gateway, "--token", "nope"
    )
    out, _ = capsys.readouterr()
    assert code == 1
    assert out.startswith("Authentication required")
    assert await stack.accounts() == 0


async def test_usage_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CHORUS_TOKEN", raising=False)
    path = write_csv(tmp_path / "a.csv", "x,orange,,fr,,,")
    assert main(["inventory", "import", str(path)]) == 2
    assert "no token" in capsys.readouterr().err
    assert main(["inventory", "import", str(tmp_path / "missing.csv"), "--token", "t"]) == 2
    assert "no file" in capsys.readouterr().err
    assert main(["inventory", "import", str(path), "--token", "t", "--gateway", "localhost"]) == 2
    with pytest.raises(SystemExit) as exited:
        main(["inventory", "import"])
    assert exited.value.code == 2


async def test_a_file_over_the_limit_is_refused(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = stack.inventory.app.state.settings
    stack.inventory.app.state.settings = settings.model_copy(update={"import_max_bytes": 10_000})
    try:
        rows = [f"instagram,acct_{i},Account {i},fr,official,francois,brand" for i in range(20_000)]
        path = write_csv(tmp_path / "big.csv", *rows)
        code = await chorus(
            "inventory", "import", str(path), "--gateway", stack.gateway, "--token", stack.token
        )
    finally:
        stack.inventory.app.state.settings = settings
    out, err = capsys.readouterr()
    assert code == 1
    assert out.startswith("The import is too large: An import is at most 10000 bytes"), out + err
    assert await stack.accounts() == 0
