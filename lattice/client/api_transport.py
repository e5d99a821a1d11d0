"""How ltc's API calls reach the box: one request, one answer, over a keep-alive connection.

`Transport` is what `ReceptorClient` needs. `HttpTransport` is the one `ltc` uses: a small
blocking HTTP/1.1 client (plain_http.py), because importing aiohttp costs about 100 ms, half of
a whole `ltc create` of one instance, and http.client another 13 ms, while plain
request/response calls need nothing of either (the log WebSocket and the other streams still
use aiohttp, imported when they are used). The blocking calls run in worker threads, never on
the event loop; each thread takes an idle connection from the pool or opens one, so calls may
overlap.

Names resolve as in `resolve.py`: a box name (`receptor.box.localhost`, `*.nip.io`) connects to
the address it stands for while the Host header keeps the real name.

Failures come out as OSErrors: `TimeoutError` when the box does not answer in time, another
`OSError` when it cannot be reached or its answer is no HTTP (`ReceptorClient` turns both into
BadTarget).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from lattice.client.names import static_address
from lattice.client.plain_http import Connection

# The router marks its own error answers with this header (gorouter's X-Cf-RouterError).
ROUTER_ERROR_HEADER = "X-Cf-RouterError"
CONNECT_TIMEOUT_S = 5.0
# One read or write of a request may take this long; API calls answer in milliseconds.
REQUEST_TIMEOUT_S = 30.0
# Safe to send again on a fresh connection when a kept-alive one turns out closed by the peer.
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
# What a kept-alive connection that the server has meanwhile closed fails with (plain_http's
# RemoteDisconnected is a ConnectionResetError).
STALE_CONNECTION = (ConnectionResetError, BrokenPipeError)


@dataclass(frozen=True)
class Reply:
    status: int
    text: str
    router_error: str | None     # the router's ROUTER_ERROR_HEADER: the router answered itself


class Transport(Protocol):
    async def request(self, method: str, url: str, body: Any = None) -> Reply:
        """Send `body` (JSON, None for none); TimeoutError or OSError when there is no answer."""
        ...


@dataclass(frozen=True)
class Endpoint:
    host: str       # the name in the URL: the Host header
    port: int
    address: str    # where to connect

    @classmethod
    def of(cls, host: str, port: int) -> Endpoint:
        return cls(host, port, static_address(host) or host)


def http_connection(endpoint: Endpoint, timeout_s: float) -> Connection:
    """An unopened connection to `endpoint`'s address (`timeout_s` bounds the connect)."""
    return Connection(endpoint.address, endpoint.port, timeout_s)


class HttpTransport:
    """Pooled keep-alive HTTP/1.1 connections, used from worker threads."""

    def __init__(
        self,
        headers: Mapping[str, str] | None = None,
        *,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> None:
        self._headers = dict(headers or {})
        self._connect_timeout_s = connect_timeout_s
        self._timeout_s = timeout_s
        self._idle: dict[Endpoint, list[Connection]] = {}
        self._lock = threading.Lock()
        self._closed = False

    async def request(self, method: str, url: str, body: Any = None) -> Reply:
        import asyncio  # here, not at the top: `ltc create` runs without it (see ltc.py)

        return await asyncio.to_thread(self.request_blocking, method, url, body)

    def request_blocking(self, method: str, url: str, body: Any = None) -> Reply:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"not an http URL: {url!r}")
        endpoint = Endpoint.of(parts.hostname, parts.port or 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = {**self._headers, "Host": parts.netloc, "Accept": "application/json"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        connection, reused = self._take(endpoint)
        try:
            try:
                response = connection.request(method, path, headers, payload)
            except STALE_CONNECTION:
                connection.close()
                if not reused or method not in IDEMPOTENT:
                    raise
                connection = self._open(endpoint)
                response = connection.request(method, path, headers, payload)
            raw = connection.body(response)
        except BaseException:
            connection.close()
            raise
        if response.will_close:
            connection.close()
        else:
            self._give_back(endpoint, connection)
        return Reply(response.status, raw.decode("utf-8", errors="replace"),
                     response.header(ROUTER_ERROR_HEADER))

    def close(self) -> None:
        """Close the idle connections; a call still under way closes its own when done."""
        with self._lock:
            self._closed = True
            idle = [c for connections in self._idle.values() for c in connections]
            self._idle.clear()
        for connection in idle:
            connection.close()

    # -- the pool -------------------------------------------------------------------------------

    def _take(self, endpoint: Endpoint) -> tuple[Connection, bool]:
        with self._lock:
            idle = self._idle.get(endpoint)
            if idle:
                return idle.pop(), True
        return self._open(endpoint), False

    def _give_back(self, endpoint: Endpoint, connection: Connection) -> None:
        with self._lock:
            if not self._closed:
                self._idle.setdefault(endpoint, []).append(connection)
                return
        connection.close()

    def _open(self, endpoint: Endpoint) -> Connection:
        connection = http_connection(endpoint, self._connect_timeout_s)
        connection.connect()
        assert connection.sock is not None   # connect() either set it or raised
        connection.sock.settimeout(self._timeout_s)
        return connection
