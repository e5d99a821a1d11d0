"""A `Transport` over an aiohttp session, for the API clients that share one with a stream
(tasks follow their logs, functions poll their route) and for tests that bring their own."""

from __future__ import annotations

from typing import Any

import aiohttp

from lattice.client.api_transport import (
    CONNECT_TIMEOUT_S,
    REQUEST_TIMEOUT_S,
    ROUTER_ERROR_HEADER,
    Reply,
)

REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S, sock_connect=CONNECT_TIMEOUT_S)


class SessionTransport:
    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    async def request(self, method: str, url: str, body: Any = None) -> Reply:
        try:
            async with self._session.request(
                method, url, json=body, timeout=REQUEST_TIMEOUT
            ) as response:
                return Reply(response.status, await response.text(),
                             response.headers.get(ROUTER_ERROR_HEADER))
        except TimeoutError:
            raise   # aiohttp's timeouts are TimeoutErrors too: ReceptorClient says "in time"
        except aiohttp.ClientConnectionError as exc:
            # As the standard library would say it: ReceptorClient handles OSError.
            raise ConnectionError(str(exc) or type(exc).__name__) from exc
