"""`chorus token` and `chorus migrate` (`chorus dev` is exercised in tests/e2e)."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import jwt
import pytest
from alembic.script import ScriptDirectory

from chassis.migrations import alembic_config
from chassis.outbox import asyncpg_dsn
from chorus.cli import main
from tests.conftest import Infrastructure


def test_token_carries_user_and_grants(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GATEWAY_JWT_SECRET", "s" * 32)
    code = main(["token", "--user", "ana", "--grant", "fr:viewer", "--grant", "de:analyst"])
    assert code == 0
    claims = jwt.decode(capsys.readouterr().out.strip(), "s" * 32, algorithms=["HS256"])
    assert claims["sub"] == "ana"
    assert claims["grants"] == ["fr:viewer", "de:analyst"]
    assert claims["exp"] > claims["iat"]


def test_token_refuses_a_grant_without_a_role(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GATEWAY_JWT_SECRET", "s" * 32)
    assert main(["token", "--user", "ana", "--grant", "fr"]) == 2
    assert "district:role" in capsys.readouterr().err


def test_migrate_creates_and_migrates_the_database(
    infrastructure: Infrastructure, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"cli_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("APPROVALS_DATABASE_URL", infrastructure.database_url(name))
    assert main(["migrate", "approvals"]) == 0

    async def version() -> str:
        db = await asyncpg.connect(asyncpg_dsn(infrastructure.database_url(name)))
        try:
            return str(await db.fetchval("SELECT version_num FROM alembic_version"))
        finally:
            await db.close()

    head = ScriptDirectory.from_config(
        alembic_config("approvals", infrastructure.database_url(name))
    ).get_current_head()
    assert head is not None
    assert head.startswith("approvals_")
    assert asyncio.run(version()) == head
