"""The address guard as pure functions, and with a resolver that needs no DNS."""

from __future__ import annotations

import ipaddress

import pytest

from services.webhooks.address_guard import AddressGuard, AddressRefused, AllowList, refusal
from tests.webhooks.factories import FakeResolver


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fd12::1", "private"),
        ("169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("100.64.0.1", "CGNAT"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("64:ff9b::a00:1", "private"),
        ("2002:7f00:1::", "loopback"),
    ],
)
def test_internal_addresses_and_their_ipv6_forms_are_refused(address: str, kind: str) -> None:
    reason = refusal(ipaddress.ip_address(address))
    assert reason is not None
    assert kind in reason


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700::1", "64:ff9b::808:808"])
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


@pytest.mark.asyncio
async def test_urls_are_checked_against_their_resolved_addresses() -> None:
    guard = AddressGuard(
        AllowList.parse([]),
        FakeResolver({"public.example": ["93.184.215.14"], "sneaky.example": ["10.0.0.7"]}),
    )
    assert await guard.check_url("https://public.example/x") == [
        ipaddress.ip_address("93.184.215.14")
    ]
    for url in (
        "https://127.0.0.1/x",
        "https://10.0.0.1/x",
        "https://169.254.169.254/latest",
        "https://[::ffff:127.0.0.1]/x",
        "https://sneaky.example/x",
        "http://public.example/x",
        "https://user:pw@public.example/x",
    ):
        with pytest.raises(AddressRefused):
            await guard.check_url(url)


@pytest.mark.asyncio
async def test_the_allow_list_names_hosts_and_networks() -> None:
    guard = AddressGuard(
        AllowList.parse(["127.0.0.1/32", "sim.internal", "10.9.0.0/16"]),
        FakeResolver({"sim.internal": ["10.1.1.1"], "other.internal": ["10.9.3.3"]}),
    )
    await guard.check_url("http://127.0.0.1:8080/x")
    await guard.check_url("http://sim.internal/x")
    await guard.check_url("https://other.internal/x")
    with pytest.raises(AddressRefused):
        await guard.check_url("http://127.0.0.2/x")
