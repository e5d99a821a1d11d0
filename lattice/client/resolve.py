"""aiohttp's resolver for the box's names (names.py has the rules): the log WebSocket and the
requests that still go through an aiohttp session reach the router's address while their Host
header keeps the real name.
"""

from __future__ import annotations

import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from lattice.client.names import LOOPBACK, WILDCARD_DNS_SUFFIXES, static_address

__all__ = ["LOOPBACK", "WILDCARD_DNS_SUFFIXES", "LatticeResolver", "static_address"]


class LatticeResolver(AbstractResolver):
    """aiohttp resolver: the box's names by rule, every other name by the system resolver."""

    def __init__(self, fallback: AbstractResolver | None = None) -> None:
        # ThreadedResolver needs a running loop, so the default one is made on first use.
        self._fallback = fallback

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        address = static_address(host)
        if address is None:
            if self._fallback is None:
                self._fallback = ThreadedResolver()
            return await self._fallback.resolve(host, port, family)
        found_family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=found_family,
                proto=0,
                flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            )
        ]

    async def close(self) -> None:
        if self._fallback is not None:
            await self._fallback.close()
