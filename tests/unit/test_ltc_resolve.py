"""Resolution of the box's names without DNS: RFC 6761 .localhost, wildcard-DNS forms, IPs."""

from __future__ import annotations

import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from lattice.client.resolve import LatticeResolver, static_address


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("localhost", "127.0.0.1"),
        ("lattice.localhost", "127.0.0.1"),
        ("receptor.lattice.localhost", "127.0.0.1"),
        ("Receptor.Lattice.LOCALHOST.", "127.0.0.1"),
        ("10.0.0.1.nip.io", "10.0.0.1"),
        ("receptor.10.0.0.1.nip.io", "10.0.0.1"),
        ("a.b.receptor.127.0.0.2.xip.io", "127.0.0.2"),
        ("127.0.0.3.sslip.io", "127.0.0.3"),
        ("1-2-3-4.nip.io", "1.2.3.4"),
        ("web-127-0-0-1.nip.io", "127.0.0.1"),
        ("receptor.127-0-0-1.sslip.io", "127.0.0.1"),
        ("1-2-3-4-5.nip.io", "2.3.4.5"),          # the last four numbers, as nip.io reads it
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "::1"),
    ],
)
def test_names_that_need_no_dns(host: str, address: str) -> None:
    assert static_address(host) == address


@pytest.mark.parametrize(
    "host",
    [
        "example.com",
        "localhost.example.com",        # only the last label makes a name loopback
        "mylocalhost",
        "nip.io",
        "app.nip.io",                   # no address embedded
        "300.0.0.1.nip.io",             # not an IPv4 address
        "1-2-3.nip.io",
        "10.0.0.1.nip.io.example.com",
    ],
)
def test_other_names_are_left_to_dns(host: str) -> None:
    assert static_address(host) is None


async def test_the_resolver_answers_box_names_itself() -> None:
    resolver = LatticeResolver()
    try:
        found = await resolver.resolve("receptor.lattice.localhost", 8080)
    finally:
        await resolver.close()
    assert found == [
        ResolveResult(
            hostname="receptor.lattice.localhost", host="127.0.0.1", port=8080,
            family=socket.AF_INET, proto=0, flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
        )
    ]


class RecordingResolver(AbstractResolver):
    """Stands in for the system resolver: this test is about which names reach it."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.closed = False

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        return []

    async def close(self) -> None:
        self.closed = True


async def test_other_names_go_to_the_fallback_resolver() -> None:
    fallback = RecordingResolver()
    resolver = LatticeResolver(fallback)
    await resolver.resolve("web.10.0.0.9.nip.io", 80)
    await resolver.resolve("example.com", 80)
    await resolver.close()
    assert fallback.asked == ["example.com"]
    assert fallback.closed
