"""The gateway-signed principal header."""

from __future__ import annotations

import pytest

from chassis.errors import Unauthorized
from chassis.principal import (
    ROLE_INCLUDES,
    ROLES,
    effective_roles,
    sign_principal,
    verify_principal,
)

KEY = b"k" * 32


def test_round_trip_keeps_user_and_grants() -> None:
    header = sign_principal(
        KEY, sub="ana", name="Ana", grants={"fr": ["viewer", "contributor"]}, request_id="r1"
    )
    principal = verify_principal(KEY, header)
    assert principal.sub == "ana"
    assert principal.name == "Ana"
    assert principal.roles_on("fr") == {"viewer", "contributor"}
    assert principal.roles_on("de") == frozenset()
    assert principal.request_id == "r1"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "No principal"),
        ("", "No principal"),
        ("no-dot-here", "not signed"),
        ("e30.bad-mac", "not signed"),
    ],
)
def test_missing_or_unsigned_is_refused(header: str | None, message: str) -> None:
    with pytest.raises(Unauthorized, match=message):
        verify_principal(KEY, header)


def test_other_key_is_refused() -> None:
    header = sign_principal(b"x" * 32, sub="mallory", grants={"hq": ["regional_manager"]})
    with pytest.raises(Unauthorized, match="not signed"):
        verify_principal(KEY, header)


def test_tampered_payload_is_refused() -> None:
    header = sign_principal(KEY, sub="ana", grants={"fr": ["viewer"]})
    body, mac = header.split(".")
    forged_body = sign_principal(KEY, sub="ana", grants={"hq": ["regional_manager"]}).split(".")[0]
    assert forged_body != body
    with pytest.raises(Unauthorized):
        verify_principal(KEY, f"{forged_body}.{mac}")


def test_expired_is_refused() -> None:
    header = sign_principal(KEY, sub="ana", grants={}, ttl=-30)
    with pytest.raises(Unauthorized, match="expired"):
        verify_principal(KEY, header)


def test_signed_garbage_is_refused() -> None:
    import base64
    import hashlib
    import hmac

    body = base64.urlsafe_b64encode(b'{"sub": 5}').rstrip(b"=").decode()
    mac = base64.urlsafe_b64encode(hmac.new(KEY, body.encode(), hashlib.sha256).digest())
    with pytest.raises(Unauthorized, match="malformed"):
        verify_principal(KEY, f"{body}.{mac.rstrip(b'=').decode()}")


def test_a_role_includes_the_roles_below_it() -> None:
    assert effective_roles({"regional_manager"}) == {
        "regional_manager",
        "district_manager",
        "contributor",
        "analyst",
        "viewer",
    }
    assert effective_roles({"legal", "contributor"}) == {"legal", "contributor", "viewer"}
    # The approvers are functions, not ranks: no role includes them.
    approvers = {"approver", "brand", "legal"}
    for role in set(ROLES) - approvers:
        assert not approvers & effective_roles({role}), role
    assert effective_roles({"from-the-idp"}) == {"from-the-idp"}
    assert set(ROLE_INCLUDES) == set(ROLES)
    assert all(set(included) <= set(ROLES) for included in ROLE_INCLUDES.values())
