"""Connections to backends: dialing, parsing their responses, and an idle pool per endpoint.

A `BackendConnection` carries one request at a time. What it parses is handed to a
`ResponseSink` (the exchange that sent the request); when the response has ended, the
exchange either gives the connection back to the `Upstream` (keep-alive, most recently used
first) or closes it. A pooled connection keeps reading, so a backend closing it is noticed at
once and it leaves the pool instead of failing the next request.

After a `101 Switching Protocols` the connection stops parsing and passes bytes through
(`on_tunnel_data`) until either side closes.
"""

from __future__ import annotations

import asyncio
from typing import Protocol, cast

import httptools

from router.errors import DialError
from router.headers import Header, HeadFacts, scan
from router.pool import Endpoint


class HeldWrites(Protocol):
    def hold_writes(self) -> None:
        """Collect what is written to the client until `flush_writes`: one syscall per read."""
    def flush_writes(self) -> None: ...


class ResponseSink(Protocol):
    """Where a backend connection delivers what it receives. Called from the event loop."""

    def on_response_head(
        self, status: int, reason: bytes, headers: list[Header], facts: HeadFacts
    ) -> None: ...
    def on_response_body(self, data: bytes) -> None: ...
    def on_response_end(self, reusable: bool) -> None: ...
    def on_upgraded(self, early_data: bytes) -> None: ...
    def on_tunnel_data(self, data: bytes) -> None: ...
    def on_backend_lost(self, reason: str) -> None: ...
    def on_backend_write_paused(self) -> None: ...
    def on_backend_write_resumed(self) -> None: ...
    @property
    def client(self) -> HeldWrites:
        """The client the response goes to; its writes are held for the length of one read."""


class BackendConnection(asyncio.Protocol):
    __slots__ = (
        "_ended",
        "_head_request",
        "_headers",
        "_keep_alive",
        "_new_parser",
        "_parser",
        "_reading_paused",
        "_reason",
        "_sink",
        "_status",
        "_transport",
        "_tunnel",
        "_unasked",
        "_until_close",
        "_upstream",
        "closed",
        "endpoint",
        "idle_since",
    )

    def __init__(self, endpoint: Endpoint, upstream: Upstream) -> None:
        self.endpoint = endpoint
        self._upstream = upstream
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._sink: ResponseSink | None = None
        self._head_request = False
        self._status = 0
        self._reason = b""
        self._headers: list[Header] = []
        self._keep_alive = False
        self._until_close = False     # the body ends when the backend closes (no length given)
        self._ended = False           # the parser saw the end of the current response
        self._unasked = False         # more bytes came after it: the backend is confused
        self._new_parser = False      # after a HEAD response: llhttp would wait for its body
        self._tunnel = False
        self._reading_paused = False
        self.closed = False
        self.idle_since = 0.0         # loop time it went back to the pool

    # -- used by the exchange ----------------------------------------------------------------

    def begin(self, sink: ResponseSink, *, head_request: bool) -> None:
        """Bind the next response to `sink`; `head_request`: it answers a HEAD (no body)."""
        self._sink = sink
        self._head_request = head_request

    def write(self, data: bytes) -> None:
        if not self.closed and self._transport is not None:
            self._transport.write(data)

    def writelines(self, parts: list[bytes]) -> None:
        if not self.closed and self._transport is not None:
            self._transport.writelines(parts)

    def pause_reading(self) -> None:
        if not self._reading_paused and not self.closed and self._transport is not None:
            self._reading_paused = True
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self._reading_paused and not self.closed and self._transport is not None:
            self._reading_paused = False
            self._transport.resume_reading()

    @property
    def reading_paused(self) -> bool:
        return self._reading_paused

    def park(self, now: float) -> None:
        """Wait in the pool from loop time `now`: no sink, and reading, so that a backend
        closing the connection is noticed while it waits."""
        self._sink = None
        self.idle_since = now
        if self._reading_paused and self._transport is not None:
            self._reading_paused = False
            self._transport.resume_reading()

    def close(self) -> None:
        self._sink = None
        if not self.closed and self._transport is not None:
            self.closed = True
            self._transport.close()

    def abort(self) -> None:
        self._sink = None
        if not self.closed and self._transport is not None:
            self.closed = True
            self._transport.abort()

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._upstream.forget(self)
        sink, self._sink = self._sink, None
        if sink is None:
            return
        if self._until_close and exc is None and not self._tunnel:
            sink.on_response_end(False)     # a body without a length ends when the backend closes
        else:
            sink.on_backend_lost(f"connection closed ({exc})" if exc else "connection closed")

    def pause_writing(self) -> None:
        if self._sink is not None:
            self._sink.on_backend_write_paused()

    def resume_writing(self) -> None:
        if self._sink is not None:
            self._sink.on_backend_write_resumed()

    def data_received(self, data: bytes) -> None:
        sink = self._sink
        if sink is None:
            # Bytes on an idle connection: the backend is confused; it cannot be reused.
            self.abort()
            return
        if self._tunnel:
            sink.on_tunnel_data(data)
            return
        # Straight to the client rather than through a method of the sink: two Python calls
        # fewer per read.
        client = sink.client
        client.hold_writes()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._tunnel = True
            if self._sink is not None:
                self._sink.on_upgraded(data[upgrade.args[0]:])
        except httptools.HttpParserError as exc:
            self._fail(f"invalid response: {exc}")
        else:
            if self._ended:
                self._end()
        finally:
            client.flush_writes()

    # -- httptools callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        # Fresh lists even for a response nobody asked for (below): what it collects goes
        # nowhere, and the status and header callbacks need no check of their own.
        self._reason = b""
        self._headers = []
        if self._ended:
            # A second response in one read: the backend answered something nobody asked.
            # It is dropped, and the connection is not reused.
            self._unasked = True
            return
        self._status = 0
        self._until_close = False

    def on_status(self, status: bytes) -> None:
        self._reason += status      # llhttp may deliver it in pieces

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self._unasked:
            return
        status = self._status = self._parser.get_status_code()
        facts = scan(self._headers)
        if status >= 200:
            self._keep_alive = self._parser.should_keep_alive()
            if self._head_request:
                self._ended = True
                self._new_parser = True
            elif status not in (204, 304):
                self._until_close = not facts.chunked and facts.length is None
        if self._sink is not None:
            self._sink.on_response_head(status, self._reason, self._headers, facts)

    def on_body(self, body: bytes) -> None:
        if self._sink is not None and not self._ended:
            self._sink.on_response_body(body)

    def on_message_complete(self) -> None:
        if self._unasked:
            return
        if self._status >= 200 and self._status != 101:
            self._ended = True
            self._until_close = False
        # 1xx (but 101): an interim answer; the final response follows on this connection.

    # -- internals ---------------------------------------------------------------------------

    def _end(self) -> None:
        self._ended = False
        if self._new_parser:
            self._new_parser = False
            self._parser = httptools.HttpResponseParser(self)
        sink, self._sink = self._sink, None
        if sink is not None:
            sink.on_response_end(self._keep_alive and not self._unasked)

    def _fail(self, reason: str) -> None:
        sink, self._sink = self._sink, None
        self.abort()
        if sink is not None:
            sink.on_backend_lost(reason)


class Upstream:
    """Dials backends and keeps a few idle connections per endpoint for reuse.

    Idle connections older than `idle_timeout_s` are closed by `expire_idle`, which the proxy
    calls from its periodic sweep: a timer per request would cost more than the whole lookup.
    """

    def __init__(self, *, max_idle: int, idle_timeout_s: float, dial_timeout_s: float) -> None:
        self._max_idle = max_idle
        self._idle_timeout_s = idle_timeout_s
        self._dial_timeout_s = dial_timeout_s
        self._idle: dict[tuple[str, int], list[BackendConnection]] = {}
        self._closed = False

    def acquire(self, endpoint: Endpoint) -> BackendConnection | None:
        """An idle connection to `endpoint`, the most recently used first; None if there is none."""
        idle = self._idle.get(endpoint.address_key)
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        return None

    async def dial(self, endpoint: Endpoint) -> BackendConnection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._dial_timeout_s):
                _, conn = await loop.create_connection(
                    lambda: BackendConnection(endpoint, self), endpoint.address, endpoint.port
                )
        except TimeoutError as exc:
            raise DialError(endpoint, f"timed out after {self._dial_timeout_s} s") from exc
        except OSError as exc:
            raise DialError(endpoint, exc.strerror or str(exc)) from exc
        return conn

    def release(self, conn: BackendConnection, now: float) -> None:
        """Take back a connection whose response has fully ended; close it if the pool is full."""
        key = conn.endpoint.address_key
        idle = self._idle.get(key)
        if idle is None:
            idle = self._idle[key] = []
        if self._closed or conn.closed or len(idle) >= self._max_idle:
            conn.close()
            return
        conn.park(now)
        idle.append(conn)

    def forget(self, conn: BackendConnection) -> None:
        """`conn` has closed: it must never be handed out again."""
        idle = self._idle.get(conn.endpoint.address_key)
        if idle is not None and conn in idle:
            idle.remove(conn)

    def expire_idle(self, now: float) -> None:
        """Close connections idle for longer than the timeout, and forget empty endpoints."""
        for key, idle in list(self._idle.items()):
            # The oldest are first: connections are appended when released.
            while idle and now - idle[0].idle_since > self._idle_timeout_s:
                idle.pop(0).close()
            if not idle:
                del self._idle[key]

    def idle_count(self, endpoint: Endpoint) -> int:
        return len(self._idle.get(endpoint.address_key, ()))

    def close(self) -> None:
        """Close every idle connection and pool no more (shutdown)."""
        self._closed = True
        for idle in self._idle.values():
            for conn in list(idle):
                conn.close()
        self._idle.clear()
