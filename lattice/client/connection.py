"""What one ltc command talks to the box through.

API calls go over `HttpTransport` (api_transport.py: plain_http.py, no aiohttp). The log
WebSocket and the other streams use an aiohttp session, made on first use of
`Connection.session` (so aiohttp is imported only by the commands that stream); it resolves
the box's names (resolve.py), so `doppler.<domain>` reaches the router's address while the Host
header keeps the real name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from lattice.client.api_transport import HttpTransport
from lattice.client.app_runner import AppRunner
from lattice.client.receptor import ReceptorClient
from lattice.client.target import Target, auth_headers

if TYPE_CHECKING:
    import aiohttp

    from lattice.client.resolve import LatticeResolver


class Connection:
    def __init__(self, target: Target, transport: HttpTransport) -> None:
        self.target = target
        self.receptor = ReceptorClient(transport, target.receptor_url)
        self.apps = AppRunner(self.receptor, target)
        self._session: aiohttp.ClientSession | None = None
        self._resolver: LatticeResolver | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """An aiohttp session for streams, with the box's credentials; made on first use."""
        if self._session is None:
            import aiohttp

            from lattice.client.resolve import LatticeResolver

            self._resolver = LatticeResolver()
            # No session-wide timeout: a log tail lasts as long as the user wants. Each API
            # call carries its own (session_transport.REQUEST_TIMEOUT).
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(resolver=self._resolver),
                timeout=aiohttp.ClientTimeout(total=None),
                headers=auth_headers(self.target),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._resolver is not None:
            # The connector closes only resolvers it made itself.
            await self._resolver.close()


@asynccontextmanager
async def connect(target: Target) -> AsyncIterator[Connection]:
    transport = HttpTransport(auth_headers(target))
    connection = Connection(target, transport)
    try:
        yield connection
    finally:
        try:
            await connection.close()
        finally:
            transport.close()
