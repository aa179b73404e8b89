"""`chorus token` and `chorus migrate` (`chorus dev` is exercised in tests/e2e).

`chorus token` is run as a newcomer runs it: in a folder of its own, with HOME and the
variables it reads under the test's control. Its tokens are checked with the gateway's own
verification, as the gateway of the running instance would check them."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import jwt
import pytest
from alembic.script import ScriptDirectory

from chassis.errors import Unauthorized
from chassis.migrations import alembic_config
from chassis.outbox import asyncpg_dsn
from chassis.principal import DISTRICT_ID_PATTERN, ROLES
from chorus.cli import dev_secrets, main, state_dir_setting
from gateway.auth import TokenVerifier, grants_from_claims
from gateway.settings import GatewaySettings
from tests.conftest import Infrastructure

REPOSITORY = Path(__file__).resolve().parents[2]


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


# --- which secret signs: never one the running instance does not use -------------------------


@dataclass
class Newcomer:
    root: Path  # everything the test makes is under it
    home: Path
    checkout: Path  # where `make run` runs: it holds the state folder `.chorus/`
    elsewhere: Path  # a folder outside any checkout


@pytest.fixture
def newcomer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Newcomer:
    folders = Newcomer(tmp_path, tmp_path / "home", tmp_path / "chorus", tmp_path / "elsewhere")
    for folder in (folders.home, folders.checkout, folders.elsewhere):
        folder.mkdir()
    monkeypatch.chdir(folders.elsewhere)
    monkeypatch.setenv("HOME", str(folders.home))
    monkeypatch.delenv("GATEWAY_JWT_SECRET", raising=False)
    monkeypatch.delenv("CHORUS_STATE_DIR", raising=False)
    # A dev secret above the test's folder would be found, rightly; the test needs none there.
    above = [p for p in tmp_path.parents if (p / ".chorus" / "dev-secrets.json").exists()]
    assert above == [], f"a .chorus/dev-secrets.json above the test folder: {above}"
    return folders


def start_dev_in(checkout: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The state `chorus dev` leaves in `checkout` on its first start (the same functions make
    it); the JWT secret its gateway verifies with."""
    monkeypatch.chdir(checkout)
    secret = dev_secrets(state_dir_setting(None).resolve())["jwt_secret"]
    assert (checkout / ".chorus" / "dev-secrets.json").is_file()
    return secret


def files_under(root: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) under `root`."""
    return {
        str(path.relative_to(root)): path.read_bytes() if path.is_file() else None
        for path in sorted(root.rglob("*"))
    }


def token_of(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    """`chorus token ...` that succeeds: the token printed, and what it wrote on stderr."""
    code = main(["token", *argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out.strip(), err


def refusal_of(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """`chorus token ...` that refuses: exit 2, no token, the message on stderr."""
    code = main(["token", *argv])
    out, err = capsys.readouterr()
    assert (code, out) == (2, ""), err
    return err


def gateway_accepts(token: str, secret: str) -> tuple[dict[str, object], dict[str, list[str]]]:
    """The token's claims and grants as the gateway signed with `secret` reads them; raises
    Unauthorized where that gateway answers 401."""
    settings = GatewaySettings(internal_key="k" * 32, jwt_secret=secret)
    claims = asyncio.run(TokenVerifier(settings, None).verify(f"Bearer {token}"))
    return claims, grants_from_claims(claims)


def test_token_outside_a_checkout_refuses_and_says_what_to_do(newcomer: Newcomer) -> None:
    before = files_under(newcomer.root)
    # A process of its own, with only the environment a shell would give it.
    result = subprocess.run(
        [sys.executable, "-m", "chorus.cli", "token", "--user", "ana", "--grant", "hq:viewer"],
        cwd=newcomer.elsewhere,
        env={"PATH": os.environ["PATH"], "HOME": str(newcomer.home), "PYTHONPATH": str(REPOSITORY)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == "chorus: no running Chorus found: no dev secret to sign with."
    assert lines[1] == (
        "chorus: looked for GATEWAY_JWT_SECRET (not set) and for .chorus/dev-secrets.json in"
        f" {newcomer.elsewhere.resolve()} and every directory above it."
    )
    assert "from the checkout where `make run`" in lines[2]
    assert "set GATEWAY_JWT_SECRET" in lines[2]
    assert files_under(newcomer.root) == before  # no secret made, no folder either


def test_token_from_inside_the_checkout_signs_with_the_running_secret(
    newcomer: Newcomer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = start_dev_in(newcomer.checkout, monkeypatch)
    deep = newcomer.checkout / "services" / "inventory"
    deep.mkdir(parents=True)
    before = files_under(newcomer.root)
    for folder in (newcomer.checkout, deep):
        monkeypatch.chdir(folder)
        token, err = token_of(["--user", "ana", "--grant", "hq:viewer"], capsys)
        assert err == ""
        claims, grants = gateway_accepts(token, secret)
        assert claims["sub"] == "ana"
        assert grants == {"hq": ["viewer"]}
    assert files_under(newcomer.root) == before


def test_the_nearest_state_folder_wins(
    newcomer: Newcomer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    start_dev_in(newcomer.root, monkeypatch)  # a run above the checkout
    secret = start_dev_in(newcomer.checkout, monkeypatch)
    token, _ = token_of(["--user", "ana"], capsys)
    assert gateway_accepts(token, secret)[0]["sub"] == "ana"


def test_the_environment_variable_wins_and_a_mismatch_is_told(
    newcomer: Newcomer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dev_secret = start_dev_in(newcomer.checkout, monkeypatch)
    before = files_under(newcomer.root)
    gateway_secret = "g" * 40
    monkeypatch.setenv("GATEWAY_JWT_SECRET", gateway_secret)
    token, err = token_of(["--user", "ana", "--grant", "hq:analyst"], capsys)
    assert gateway_accepts(token, gateway_secret)[1] == {"hq": ["analyst"]}
    with pytest.raises(Unauthorized) as refused:  # what the newcomer saw: a 401
        gateway_accepts(token, dev_secret)
    assert refused.value.detail == "The token is not valid."
    assert err.startswith("chorus: note: GATEWAY_JWT_SECRET is set and signs this token;")
    assert f"`chorus dev` run of {newcomer.checkout / '.chorus'} uses another secret" in err
    # The same secret as the run: nothing to tell.
    monkeypatch.setenv("GATEWAY_JWT_SECRET", dev_secret)
    assert token_of(["--user", "ana"], capsys)[1] == ""
    # Outside any checkout the variable alone is enough.
    monkeypatch.chdir(newcomer.elsewhere)
    token, err = token_of(["--user", "ana"], capsys)
    assert err == ""
    assert gateway_accepts(token, dev_secret)[0]["sub"] == "ana"
    assert files_under(newcomer.root) == before


def test_an_explicit_state_folder_is_where_chorus_dev_keeps_it(
    newcomer: Newcomer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    state = newcomer.root / "var" / "chorus"
    monkeypatch.setenv("CHORUS_STATE_DIR", str(state))
    secret = dev_secrets(state_dir_setting(None).resolve())["jwt_secret"]  # as `chorus dev`
    token, _ = token_of(["--user", "ana"], capsys)
    assert gateway_accepts(token, secret)[0]["sub"] == "ana"
    monkeypatch.delenv("CHORUS_STATE_DIR")
    err = refusal_of(["--user", "ana"], capsys)
    assert "no running Chorus found" in err
    token, _ = token_of(["--user", "ana", "--state-dir", str(state)], capsys)
    assert gateway_accepts(token, secret)[0]["sub"] == "ana"
    # An absolute folder is the only place looked at.
    err = refusal_of(["--user", "ana", "--state-dir", str(newcomer.home)], capsys)
    assert f"and for {newcomer.home / 'dev-secrets.json'}." in err


def test_an_unreadable_secrets_file_is_named(
    newcomer: Newcomer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = newcomer.checkout / ".chorus" / "dev-secrets.json"
    path.parent.mkdir()
    path.write_text("{}")
    monkeypatch.chdir(newcomer.checkout)
    err = refusal_of(["--user", "ana"], capsys)
    assert f"chorus: {path} holds no jwt_secret" in err
    path.write_text("not json")
    err = refusal_of(["--user", "ana"], capsys)
    assert f"chorus: cannot read the dev secrets in {path}" in err
    assert path.read_text() == "not json"


# --- grants: the roles and district ids the services know ------------------------------------


@pytest.fixture
def gateway_secret(newcomer: Newcomer, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("GATEWAY_JWT_SECRET", "s" * 32)
    return "s" * 32


def test_grants_are_repeated_or_comma_separated_and_merged(
    gateway_secret: str, capsys: pytest.CaptureFixture[str]
) -> None:
    token, _ = token_of(
        [
            "--user", "ana",
            "--grant", "hq:regional_manager,france:viewer",
            "--grant", "hq:regional_manager",
            "--grant", " france:viewer , de:analyst,",
            "--grant", "france:approver",
        ],
        capsys,
    )  # fmt: skip
    claims, grants = gateway_accepts(token, gateway_secret)
    assert claims["grants"] == [
        "hq:regional_manager",
        "france:viewer",
        "de:analyst",
        "france:approver",
    ]
    assert grants == {
        "hq": ["regional_manager"],
        "france": ["approver", "viewer"],
        "de": ["analyst"],
    }


def test_every_role_is_accepted(gateway_secret: str, capsys: pytest.CaptureFixture[str]) -> None:
    token, _ = token_of(["--user", "ana", "--grant", ",".join(f"hq:{r}" for r in ROLES)], capsys)
    assert gateway_accepts(token, gateway_secret)[1] == {"hq": sorted(ROLES)}


def test_no_grant_is_a_token_without_grants(
    gateway_secret: str, capsys: pytest.CaptureFixture[str]
) -> None:
    token, _ = token_of(["--user", "ana"], capsys)
    claims, grants = gateway_accepts(token, gateway_secret)
    assert (claims["grants"], grants) == ([], {})


ROLES_LINE = (
    "chorus: a grant is district:role, several separated by commas; the roles are"
    " regional_manager, district_manager, contributor, approver, brand, legal, analyst, viewer"
)


@pytest.mark.parametrize(
    ("grant", "complaint"),
    [
        ("hq:district-manager", "grant 'hq:district-manager': 'district-manager' is not a role"),
        ("hq:superuser", "grant 'hq:superuser': 'superuser' is not a role"),
        ("hq:Viewer", "grant 'hq:Viewer': 'Viewer' is not a role"),
        ("hq:viewer:x", "grant 'hq:viewer:x': 'viewer:x' is not a role"),
        ("hq:", "grant 'hq:': not district:role"),
        ("hq", "grant 'hq': not district:role"),
        (":viewer", "grant ':viewer': not district:role"),
        ("HQ:viewer", "grant 'HQ:viewer': 'HQ' is not a district id"),
        ("-hq:viewer", "grant '-hq:viewer': '-hq' is not a district id"),
        ("h q:viewer", "grant 'h q:viewer': 'h q' is not a district id"),
        ("fr.paris:viewer", "grant 'fr.paris:viewer': 'fr.paris' is not a district id"),
        ("x" * 64 + ":viewer", f"grant '{'x' * 64}:viewer': '{'x' * 64}' is not a district id"),
    ],
)
def test_an_invalid_grant_is_refused_with_the_roles(
    gateway_secret: str, capsys: pytest.CaptureFixture[str], grant: str, complaint: str
) -> None:
    err = refusal_of(["--user", "ana", "--grant", f"hq:viewer,{grant}"], capsys)
    assert err.splitlines()[0].startswith(f"chorus: {complaint}")
    assert err.splitlines()[-1] == ROLES_LINE
    if "district id" in complaint:
        assert DISTRICT_ID_PATTERN in err


def test_every_invalid_grant_is_named(
    gateway_secret: str, capsys: pytest.CaptureFixture[str]
) -> None:
    err = refusal_of(
        ["--user", "ana", "--grant", "hq:superuser,fr:viewer", "--grant", "Fr:viewer"], capsys
    )
    assert err.splitlines() == [
        "chorus: grant 'hq:superuser': 'superuser' is not a role",
        f"chorus: grant 'Fr:viewer': 'Fr' is not a district id (one matches {DISTRICT_ID_PATTERN})",
        ROLES_LINE,
    ]


def test_grants_are_checked_before_any_secret_is_looked_for(
    newcomer: Newcomer, capsys: pytest.CaptureFixture[str]
) -> None:
    err = refusal_of(["--user", "ana", "--grant", "hq:superuser"], capsys)
    assert "'superuser' is not a role" in err
    assert "no running Chorus" not in err


def test_the_district_id_form_is_the_services_own() -> None:
    from services.approvals.policies import schemas as approvals_policies
    from services.calendar.calendars import schemas as calendar_calendars
    from services.inventory.districts import schemas as inventory_districts

    for schemas in (inventory_districts, approvals_policies, calendar_calendars):
        assert schemas.DISTRICT_ID_PATTERN is DISTRICT_ID_PATTERN
    assert re.fullmatch(DISTRICT_ID_PATTERN, "fr-marketing_2")


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
