"""One HTTP session per command, resolving the box's names (resolve.py) for every request.

API calls and the log WebSocket share it, so `receptor.<domain>` and `doppler.<domain>` reach
the router's address while their Host header keeps the real name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp

from lattice.client.app_runner import AppRunner
from lattice.client.receptor import ReceptorClient
from lattice.client.resolve import LatticeResolver
from lattice.client.target import Target


@dataclass(frozen=True)
class Connection:
    target: Target
    session: aiohttp.ClientSession
    receptor: ReceptorClient
    apps: AppRunner


@asynccontextmanager
async def connect(target: Target) -> AsyncIterator[Connection]:
    resolver = LatticeResolver()
    try:
        connector = aiohttp.TCPConnector(resolver=resolver)
        # No session-wide timeout: a log tail lasts as long as the user wants. Each API call
        # carries its own (receptor.REQUEST_TIMEOUT).
        # Credentials on the session reach every request: API calls and the log WebSocket.
        headers = {}
        if target.credentials is not None:
            headers["Authorization"] = target.credentials.header()
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=None), headers=headers
        ) as session:
            receptor = ReceptorClient(session, target.receptor_url)
            yield Connection(target, session, receptor, AppRunner(receptor, target))
    finally:
        # The connector closes only resolvers it made itself.
        await resolver.close()
