"""The data plane: HTTP/1.1 client connections, proxied to backends one exchange at a time.

Built on asyncio Protocols and httptools rather than a web framework, because every request
crosses it: callbacks parse and forward bytes as they arrive, with no task per request (a task
exists only while a new backend connection is being dialed).

One client connection handles its requests in order (`Exchange`s). Pipelined requests wait in a
queue with the client's reading paused. Bodies stream in both directions and memory stays
bounded by transport flow control:

    client --> router --> backend   backend transport's buffer high: pause reading the client
    client <-- router <-- backend   client transport's buffer high: pause reading the backend

An exchange: look the Host up in the route table (404 unknown_route / 503 no_endpoints), take
an idle pooled connection to the next endpoint or dial one (a failed dial moves on to another
endpoint, at most `max_attempts` in all; see retries.py), send the rewritten head and the body,
relay the response re-framed for this client, then give the backend connection back to the pool.
An upgrade request answered with 101 turns both connections into a byte pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Protocol, cast

import httptools
import structlog

from router import errors
from router.activation import Activator
from router.affinity import (
    parse_app_instance,
    session_started,
    sticky_instance,
    vcap_cookie_header,
)
from router.applogs import AppLogs
from router.config import RouterConfig
from router.cooldown import CoolDown
from router.errors import DialError, ErrorKind
from router.headers import (
    LAST_CHUNK,
    Framing,
    Header,
    HeadFacts,
    build_request_head,
    build_response_head,
    chunk,
    new_request_id,
    response_framing,
)
from router.leastconnection import InFlight
from router.metrics import Metrics
from router.pool import Endpoint, Pool
from router.retries import Attempt, should_retry
from router.upstream import BackendConnection, Upstream

log = structlog.get_logger("router.proxy")

# Request body held while no backend connection is ready yet, before the client is paused.
BUFFER_LIMIT = 64 * 1024
# How often timeouts are checked: idle clients, idle backends, responses that do not come.
# One sweep for everything is far cheaper than a timer armed and cancelled on every request.
SWEEP_INTERVAL_S = 1.0

# Two writes held during one backend read (the usual head and body) are joined into one
# buffer when together at most this long; larger bodies go out as they are, uncopied.
_JOIN_LIMIT = 16 * 1024

# Reasons for not reading from the client; reading resumes when none is left.
_PAUSE_PIPELINE = 1     # a pipelined request waits for the one before it
_PAUSE_BACKEND = 2      # the backend's write buffer is full
_PAUSE_BUFFER = 4       # body bytes pile up while no backend connection is ready


class RouteLookup(Protocol):
    def lookup(self, host: str, target: bytes = b"/") -> Pool | None: ...


class _BadRequest(Exception):
    """Raised from a parser callback to stop parsing a request the router refuses."""


class Proxy:
    """Accepts client connections (`protocol_factory`) and proxies what they send."""

    def __init__(
        self,
        routes: RouteLookup,
        config: RouterConfig,
        *,
        in_flight: InFlight | None = None,
        app_logs: AppLogs | None = None,
    ) -> None:
        self.routes = routes
        self.config = config
        self.in_flight = in_flight if in_flight is not None else InFlight()
        self.cooldown = CoolDown(config.cooldown_s)
        self.metrics = Metrics()
        self.app_logs = app_logs
        # Scale to zero (router/activation.py); None: an empty pool is answered 503 at once.
        self.activator: Activator | None = None
        # Decided once: building a debug event's arguments for every request costs even when
        # the event is filtered out.
        self.log_requests = log.bind().is_enabled_for(logging.DEBUG)
        self.upstream = Upstream(
            max_idle=config.max_idle_per_endpoint,
            idle_timeout_s=config.backend_idle_timeout_s,
            dial_timeout_s=config.dial_timeout_s,
        )
        self.shutting_down = False
        self._connections: set[ClientConnection] = set()
        self._all_closed: asyncio.Event | None = None
        self._sweeper: asyncio.Task[None] | None = None
        shortest = min(
            config.response_timeout_s, config.client_idle_timeout_s, config.backend_idle_timeout_s
        )
        self._sweep_interval_s = min(SWEEP_INTERVAL_S, shortest / 4)

    def start(self) -> None:
        """Start the periodic sweep of timeouts; call once, from the loop, before serving."""
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def _sweep_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._sweep_interval_s)
            self.sweep(loop.time())

    def sweep(self, now: float) -> None:
        """Close what has been idle too long; fail responses that did not come in time."""
        for connection in list(self._connections):
            connection.check_timeouts(now)
        self.upstream.expire_idle(now)

    def protocol_factory(self) -> ClientConnection:
        return ClientConnection(self)

    @property
    def connections(self) -> frozenset[ClientConnection]:
        """The client connections open now (for shutdown, metrics and tests)."""
        return frozenset(self._connections)

    def opened(self, connection: ClientConnection) -> None:
        self._connections.add(connection)

    def closed(self, connection: ClientConnection) -> None:
        self._connections.discard(connection)
        if not self._connections and self._all_closed is not None:
            self._all_closed.set()

    async def drain(self, grace_s: float) -> None:
        """Finish what is in flight within `grace_s`, then cut what remains; close the pool.

        Idle connections are closed at once; busy ones answer their current request with
        `Connection: close` and close after it.
        """
        self.shutting_down = True
        self._all_closed = asyncio.Event()
        for connection in list(self._connections):
            connection.close_when_idle()
        if self._connections:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace_s):
                    await self._all_closed.wait()
        if self._connections:
            log.warning("connections-cut", count=len(self._connections), grace_s=grace_s)
            for connection in list(self._connections):
                connection.abort()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        self.upstream.close()


class ClientConnection(asyncio.Protocol):
    """One client TCP connection: parses its requests and runs them as exchanges, in order."""

    __slots__ = (
        "_closing",
        "_current",
        "_eof",
        "_head_bytes",
        "_held",
        "_idle_since",
        "_max_head_bytes",
        "_parser",
        "_parsing",
        "_paused",
        "_queue",
        "_transport",
        "_upgraded",
        "client_ip",
        "config",
        "loop",
        "proxy",
        "write_paused",
    )

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.config = proxy.config
        self.loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self.client_ip = b""
        self._current: Exchange | None = None     # the exchange being answered
        self._parsing: Exchange | None = None     # the exchange the parser is filling
        self._queue: deque[Exchange] = deque()    # pipelined exchanges waiting their turn
        self._upgraded: Exchange | None = None    # after an upgrade head, bytes go to it raw
        self._paused = 0
        self.write_paused = False
        self._held: list[bytes] | None = None     # writes collected by hold_writes
        self._closing = False
        self._eof = False                         # the client shut its sending side
        self._head_bytes = 0
        self._max_head_bytes = self.config.max_header_bytes
        self._idle_since = self.loop.time()

    # -- writing to the client ---------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self._held is not None:
            self._held.append(data)
        elif not self._closing and self._transport is not None:
            self._transport.write(data)

    def writelines(self, parts: list[bytes]) -> None:
        if self._held is not None:
            self._held += parts
        elif not self._closing and self._transport is not None:
            self._transport.writelines(parts)

    def hold_writes(self) -> None:
        if self._held is None:
            self._held = []

    def flush_writes(self) -> None:
        held, self._held = self._held, None
        if held and not self._closing and self._transport is not None:
            if len(held) == 1:
                self._transport.write(held[0])
            elif len(held) == 2 and len(held[0]) + len(held[1]) <= _JOIN_LIMIT:
                # A head and a small body: copying them into one buffer costs less than
                # the transport's handling of several.
                self._transport.write(held[0] + held[1])
            else:
                self._transport.writelines(held)

    def close(self) -> None:
        """Close after what has been written is flushed."""
        if not self._closing and self._transport is not None:
            self.flush_writes()
            self._closing = True
            self._transport.close()

    def abort(self) -> None:
        """Cut the connection now: the client must see that its response is incomplete."""
        self._held = None
        if self._transport is not None:
            self._closing = True
            self._transport.abort()

    def close_when_idle(self) -> None:
        if self._current is None and self._parsing is None:
            self.close()

    # -- flow control ------------------------------------------------------------------------

    def pause(self, reason: int) -> None:
        if not self._paused and not self._closing and self._transport is not None:
            self._transport.pause_reading()
        self._paused |= reason

    def resume(self, reason: int) -> None:
        if self._paused & reason:
            self._paused &= ~reason
            if not self._paused and not self._closing and self._transport is not None:
                self._transport.resume_reading()

    def pause_writing(self) -> None:
        self.write_paused = True
        backend = self._current.backend if self._current is not None else None
        if backend is not None:
            backend.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        backend = self._current.backend if self._current is not None else None
        if backend is not None:
            backend.resume_reading()

    @property
    def backend_reading_paused(self) -> bool:
        """True while the current exchange's backend is not read, because this client is slow."""
        backend = self._current.backend if self._current is not None else None
        return backend is not None and backend.reading_paused

    # -- timeouts (called by the proxy's sweep) ----------------------------------------------

    def check_timeouts(self, now: float) -> None:
        current = self._current
        if current is not None and current.started:
            current.check_timeout(now)
        elif not self._closing and now - self._idle_since > self.config.client_idle_timeout_s:
            # Idle between requests, or a head that never ends (a slow-loris client): since
            # the last request was answered, the client had the whole timeout to send one.
            if current is not None:
                current.abort()
                self._current = None
            self.close()

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and peer:
            self.client_ip = str(peer[0]).encode()
        self.proxy.opened(self)
        if self.proxy.shutting_down:
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._held = None
        exchanges = [self._current, *self._queue]
        self._current = None
        self._queue.clear()
        for exchange in exchanges:
            if exchange is not None:
                exchange.abort()
        self.proxy.closed(self)

    def eof_received(self) -> bool:
        # A client may shut its sending side and still wait for the answer: keep the transport
        # open for writing until the exchanges in hand are answered.
        self._eof = True
        if self._upgraded is not None or (self._current is None and self._parsing is None):
            self.close()
        return True

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        if self._upgraded is not None:
            self._upgraded.on_client_bytes(data)
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            rest = data[upgrade.args[0]:]
            if rest and self._upgraded is not None:
                self._upgraded.on_client_bytes(rest)
        except httptools.HttpParserCallbackError as exc:
            reason = exc.__context__ if isinstance(exc.__context__, _BadRequest) else exc
            self._refuse(str(reason))
            return
        except httptools.HttpParserError as exc:
            self._refuse(f"invalid HTTP request: {exc}")
            return
        # Started only now, after the whole read is parsed, so that a body that came with the
        # head goes to the backend in the same write.
        current = self._current
        if current is not None and current.head_complete and not current.started:
            current.start()

    # -- httptools callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._head_bytes = 0
        exchange = Exchange(self)
        self._parsing = exchange
        if self._current is None:
            self._current = exchange
        else:
            self._queue.append(exchange)
            self.pause(_PAUSE_PIPELINE)

    def on_url(self, url: bytes) -> None:
        assert self._parsing is not None
        self._head_bytes += len(url)
        if self._head_bytes > self._max_head_bytes:
            raise _BadRequest(f"request head larger than {self._max_head_bytes} bytes")
        self._parsing.target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        exchange = self._parsing
        assert exchange is not None
        self._head_bytes += len(name) + len(value) + 4
        if self._head_bytes > self._max_head_bytes:
            raise _BadRequest(f"request head larger than {self._max_head_bytes} bytes")
        exchange.headers.append((name, value))
        size = len(name)
        # Compare lengths first: most headers are none of these, and that costs no lower().
        if size == 4:
            if name.lower() == b"host":
                exchange.host = value
        elif size == 6:
            if name.lower() == b"cookie":
                exchange.cookies.append(value)
        elif size == 17 and name.lower() == b"x-cf-app-instance":
            exchange.app_instance = value

    def on_headers_complete(self) -> None:
        exchange = self._parsing
        assert exchange is not None
        parser = self._parser
        exchange.method = parser.get_method()
        if exchange.method == b"CONNECT":
            raise _BadRequest("CONNECT is not supported")
        exchange.http_10 = parser.get_http_version() == "1.0"
        exchange.keep_alive = parser.should_keep_alive() and not self._eof
        exchange.upgrade = parser.should_upgrade()
        exchange.head_complete = True

    def on_body(self, body: bytes) -> None:
        if self._parsing is not None:
            self._parsing.on_request_body(body)

    def on_message_complete(self) -> None:
        exchange = self._parsing
        self._parsing = None
        if exchange is None:
            return
        if exchange.upgrade:
            # llhttp stops here; whatever follows belongs to the protocol asked for.
            self._upgraded = exchange
        exchange.on_request_end()
        if self._current is None:     # usually the exchange is still being answered: no call
            self._after_exchange_activity()

    # -- exchanges ---------------------------------------------------------------------------

    def exchange_finished(self, exchange: Exchange, now: float) -> None:
        """`exchange` has written its whole response (at loop time `now`): close, or start the
        next request."""
        if exchange is not self._current:
            return
        self._current = None
        if self._paused:
            self.resume(_PAUSE_BACKEND | _PAUSE_BUFFER)
        if not exchange.keep_alive or self.proxy.shutting_down or (self._eof and not self._queue):
            self.close()
            return
        if self._queue:
            following = self._queue.popleft()
            self._current = following
            if not self._queue:
                self.resume(_PAUSE_PIPELINE)
            if following.head_complete:
                following.start()
            return
        if self._paused:
            self.resume(_PAUSE_PIPELINE)
        self._after_exchange_activity(now)

    def _after_exchange_activity(self, now: float | None = None) -> None:
        if self._current is None and self._parsing is None and not self._queue:
            if self.proxy.shutting_down or self._eof:
                self.close()
            else:
                self._idle_since = self.loop.time() if now is None else now

    def _refuse(self, message: str) -> None:
        """The client sent something unparseable or refused: answer 400 if it is our turn."""
        log.info("bad-request", client=self.client_ip.decode(), error=message)
        if self._current is not None and self._current is not self._parsing:
            # An earlier request is still being answered; answering out of order is worse
            # than closing after it.
            self._current.keep_alive = False
            for exchange in self._queue:
                exchange.abort()
            self._queue.clear()
            self._parsing = None
            self.pause(_PAUSE_PIPELINE)
            return
        if self._current is not None:
            self._current.abort()
            self._current = None
        self.write(errors.error_response(errors.BAD_REQUEST, message, keep_alive=False))
        self.close()



class Exchange:
    """One request and its response; the `ResponseSink` of the backend connection it uses."""

    __slots__ = (
        "_aborted",
        "_body",
        "_buffered",
        "_chunked",
        "_counted",
        "_deadline",
        "_dial_task",
        "_early_tunnel",
        "_endpoint",
        "_finished",
        "_framing",
        "_held",
        "_pool",
        "_response_started",
        "_retriable",
        "_scaled",
        "_started_at",
        "_status",
        "_tried",
        "_tunneling",
        "app_instance",
        "backend",
        "client",
        "cookies",
        "head_complete",
        "headers",
        "host",
        "http_10",
        "keep_alive",
        "method",
        "request_done",
        "started",
        "target",
        "upgrade",
    )

    def __init__(self, client: ClientConnection) -> None:
        self.client = client
        self.method = b""
        self.target = b""
        self.headers: list[Header] = []
        self.host = b""
        self.cookies: list[bytes] = []
        self.app_instance: bytes | None = None   # X-Cf-App-Instance
        self.http_10 = False
        self.keep_alive = True
        self.upgrade = False
        self.head_complete = False
        self.started = False
        self.request_done = False
        self.backend: BackendConnection | None = None
        self._body: list[bytes] = []            # body received while no backend is ready
        self._buffered = 0
        self._early_tunnel: list[bytes] = []    # client bytes sent after an upgrade head
        self._chunked = False
        self._pool: Pool | None = None
        self._endpoint: Endpoint | None = None
        self._tried: list[Endpoint] = []
        self._dial_task: asyncio.Task[None] | None = None
        self._deadline = 0.0                    # loop time by which the response head is due
        self._response_started = False
        self._framing = Framing.NONE
        self._tunneling = False
        self._finished = False
        self._aborted = False
        self._counted: Endpoint | None = None   # counted in flight against this endpoint
        self._scaled: tuple[str, ...] = ()      # counted in flight for these scalable apps
        self._held = False                      # waited once for a scaled-to-zero app
        self._retriable = True                  # False: targeted at one instance
        self._started_at = 0.0
        self._status = 0

    # -- the request side --------------------------------------------------------------------

    def start(self) -> None:
        self.started = True
        self._started_at = self.client.loop.time()
        if not self.host:
            self._answer_error(errors.EMPTY_HOST, errors.EMPTY_HOST_MESSAGE)
            return
        host = self.host.decode("latin-1")
        pool = self.client.proxy.routes.lookup(host, self.target)
        if pool is None:
            self._answer_error(errors.UNKNOWN_ROUTE, errors.unknown_route_message(host))
            return
        self._pool = pool
        if pool.scalable:
            activator = self.client.proxy.activator
            if activator is not None:
                self._scaled = pool.scalable
                activator.request_started(pool.scalable)
        if self.app_instance is not None:
            self._start_targeted(pool, self.app_instance)
            return
        if self.cookies:
            guid = sticky_instance(self.cookies)
            if guid is not None:
                for endpoint in pool.endpoints:
                    if endpoint.instance_guid == guid:
                        # The session's instance, while it lives; others if its dial fails.
                        self._use(endpoint)
                        return
        self._try_next()

    def _start_targeted(self, pool: Pool, header: bytes) -> None:
        """X-Cf-App-Instance: that instance or a 400; never another one."""
        value = header.decode("latin-1")
        target = parse_app_instance(header)
        if target is None:
            self._answer_error(
                errors.INVALID_APP_INSTANCE, errors.invalid_app_instance_message(value)
            )
            return
        guid, index = target
        for endpoint in pool.endpoints:
            if endpoint.process_guid == guid and endpoint.index == index:
                self._retriable = False
                self._use(endpoint)
                return
        self._answer_error(errors.UNKNOWN_INSTANCE, errors.unknown_instance_message(value))

    def on_request_body(self, data: bytes) -> None:
        if self._finished or self._aborted:
            return      # the answer is already out (e.g. a 404): the rest is read and dropped
        if self.backend is not None:
            if self._chunked:
                self.backend.writelines(chunk(data))
            else:
                self.backend.write(data)
            return
        self._body.append(data)
        self._buffered += len(data)
        if self._buffered > BUFFER_LIMIT:
            self.client.pause(_PAUSE_BUFFER)

    def on_request_end(self) -> None:
        self.request_done = True
        if self.backend is not None and self._chunked and not self._finished:
            self.backend.write(LAST_CHUNK)

    def on_client_bytes(self, data: bytes) -> None:
        """Client bytes after an upgrade head: piped once the backend said 101, held before."""
        if self._tunneling and self.backend is not None:
            self.backend.write(data)
        elif not self._finished and not self._aborted:
            self._early_tunnel.append(data)
            self.client.pause(_PAUSE_BUFFER)

    def abort(self) -> None:
        """The client is gone: stop everything this exchange started."""
        self._aborted = True
        self._uncount()
        self._unscale()
        if self._dial_task is not None:
            self._dial_task.cancel()
            self._dial_task = None
        backend, self.backend = self.backend, None
        if backend is not None:
            backend.abort()

    def check_timeout(self, now: float) -> None:
        if (
            self.backend is not None
            and not self._response_started
            and not self._tunneling
            and now > self._deadline
        ):
            timeout = self.client.config.response_timeout_s
            self._backend_failed(f"no response head within {timeout} s")

    # -- choosing and reaching a backend -----------------------------------------------------

    def _next_endpoint(self) -> Endpoint | None:
        pool = self._pool
        assert pool is not None
        cooldown = self.client.proxy.cooldown
        if not self._tried and not cooldown:
            return pool.next()      # the common case: no list is built
        candidates = [e for e in pool.endpoints if e not in self._tried]
        if cooldown:
            candidates = cooldown.usable(candidates, self.client.loop.time())
        return pool.next_of(candidates)

    def _try_next(self) -> None:
        endpoint = self._next_endpoint()
        if endpoint is None:
            if self._tried:
                self._answer_error(errors.ENDPOINT_FAILURE, errors.ENDPOINT_FAILURE_MESSAGE)
            elif self._scaled and not self._held:
                self._hold()
            else:
                host = self.host.decode("latin-1")
                self._answer_error(errors.NO_ENDPOINTS, errors.no_endpoints_message(host))
            return
        self._use(endpoint)

    def _hold(self) -> None:
        """No instance of a scale-to-zero app: wait (no task: a callback) until one is
        routable, or answer 503 at the hold bound."""
        activator = self.client.proxy.activator
        assert activator is not None
        assert self._pool is not None
        self._held = True
        activator.hold(self._pool).add_done_callback(self._released)

    def _released(self, ready: asyncio.Future[bool]) -> None:
        if self._aborted or self._finished:
            return
        if ready.result():
            self._try_next()
            return
        activator = self.client.proxy.activator
        bound = activator.hold_timeout_s if activator is not None else 0.0
        self._answer_error(errors.NO_ENDPOINTS, errors.not_ready_message(
            self.host.decode("latin-1"), bound))

    def _use(self, endpoint: Endpoint) -> None:
        """Send the request to `endpoint`: over an idle pooled connection, or a new one."""
        self._tried.append(endpoint)
        self.client.proxy.in_flight.started(endpoint)
        self._counted = endpoint
        self._endpoint = endpoint
        connection = self.client.proxy.upstream.acquire(endpoint)
        if connection is not None:
            self._attach(connection)
        else:
            self._dial_task = self.client.loop.create_task(self._dial(endpoint))

    async def _dial(self, endpoint: Endpoint) -> None:
        upstream = self.client.proxy.upstream
        try:
            connection = await upstream.dial(endpoint)
        except DialError as exc:
            self._dial_task = None
            self._uncount()
            proxy = self.client.proxy
            proxy.cooldown.mark(endpoint, self.client.loop.time())
            proxy.metrics.backend_errors += 1
            log.warning(
                "endpoint-dial-failed",
                endpoint=str(endpoint),
                process_guid=endpoint.process_guid,
                index=endpoint.index,
                error=exc.reason,
            )
            attempt = Attempt(
                error=exc,
                attempts=len(self._tried),
                request_bytes_sent=False,
                client_gone=self._aborted,
            )
            if self._retriable and should_retry(
                attempt, max_attempts=self.client.config.max_attempts
            ):
                proxy.metrics.retries += 1
                self._try_next()
            elif not self._aborted:
                self._answer_error(errors.ENDPOINT_FAILURE, errors.ENDPOINT_FAILURE_MESSAGE)
            return
        self._dial_task = None
        if self._aborted:
            # A fresh connection is still good for others.
            upstream.release(connection, self.client.loop.time())
            return
        self._attach(connection)

    def _attach(self, backend: BackendConnection) -> None:
        assert self._endpoint is not None
        client = self.client
        self.backend = backend
        backend.begin(self, head_request=self.method == b"HEAD")
        if client.write_paused:
            backend.pause_reading()
        head, self._chunked = build_request_head(
            self.method,
            self.target,
            self.headers,
            client_ip=client.client_ip,
            endpoint=self._endpoint,
            request_id=new_request_id(),
            now_ms=time.time_ns() // 1_000_000,
            upgrade=self.upgrade,
        )
        self._deadline = client.loop.time() + client.config.response_timeout_s
        if self._body or (self.request_done and self._chunked):
            parts = [head]
            for data in self._body:
                parts += chunk(data) if self._chunked else (data,)
            if self.request_done and self._chunked:
                parts.append(LAST_CHUNK)
            backend.writelines(parts)
            self._body = []
            self._buffered = 0
            client.resume(_PAUSE_BUFFER)
        else:
            backend.write(head)

    # -- the response side (ResponseSink) ----------------------------------------------------

    def on_response_head(
        self, status: int, reason: bytes, headers: list[Header], facts: HeadFacts
    ) -> None:
        client = self.client
        if status == 101:
            if not self.upgrade:
                self._backend_failed("101 Switching Protocols to a request that asked for none")
                return
            client.write(
                build_response_head(
                    101, reason, headers, facts, framing=Framing.NONE, keep_alive=True,
                    client_http_10=False, upgrade=True,
                )
            )
            self._response_started = True
            return
        if status < 200:
            if not self.http_10:     # HTTP/1.0 clients do not expect interim answers
                client.write(
                    build_response_head(
                        status, reason, headers, facts, framing=Framing.NONE, keep_alive=True,
                        client_http_10=False,
                    )
                )
            return
        if self.upgrade or client.proxy.shutting_down:
            # After an upgrade head the client's parser cannot go on; on shutdown, we close.
            self.keep_alive = False
        self._framing = response_framing(
            status, facts, head_request=self.method == b"HEAD", client_http_10=self.http_10
        )
        if self._framing is Framing.CLOSE:
            self.keep_alive = False
        self._status = status
        extra = b""
        if b"set-cookie" in facts.names and self._endpoint is not None:
            extra = self._sticky_cookie(headers, facts)
        client.write(
            build_response_head(
                status, reason, headers, facts, framing=self._framing,
                keep_alive=self.keep_alive, client_http_10=self.http_10, extra=extra,
            )
        )
        self._response_started = True

    def on_response_body(self, data: bytes) -> None:
        if self._framing is Framing.CHUNKED:
            self.client.writelines(chunk(data))
        elif self._framing is not Framing.NONE:
            self.client.write(data)

    def on_response_end(self, reusable: bool) -> None:
        client = self.client
        if self._framing is Framing.CHUNKED:
            client.write(LAST_CHUNK)
        now = client.loop.time()
        backend, self.backend = self.backend, None
        if backend is not None:
            # A backend that answered before the whole request was sent still expects the
            # rest of it: that connection cannot carry another request.
            if reusable and self.request_done:
                client.proxy.upstream.release(backend, now)
            else:
                backend.close()
        self._finish(now)

    def on_upgraded(self, early_data: bytes) -> None:
        self._tunneling = True
        if early_data:
            self.client.write(early_data)
        if self.backend is not None and self._early_tunnel:
            self.backend.writelines(self._early_tunnel)
        self._early_tunnel = []
        self.client.resume(_PAUSE_BUFFER)

    def on_tunnel_data(self, data: bytes) -> None:
        self.client.write(data)

    def on_backend_lost(self, reason: str) -> None:
        self.backend = None
        if self._tunneling:
            self.client.close()
            return
        self._backend_failed(reason)

    def on_backend_write_paused(self) -> None:
        self.client.pause(_PAUSE_BACKEND)

    def on_backend_write_resumed(self) -> None:
        self.client.resume(_PAUSE_BACKEND)

    # -- endings -----------------------------------------------------------------------------

    def _sticky_cookie(self, headers: list[Header], facts: HeadFacts) -> bytes:
        """`Set-Cookie: __VCAP_ID__=<instance>` if the backend starts a session (JSESSIONID)."""
        assert self._endpoint is not None
        values = [
            value
            for (_, value), lname in zip(headers, facts.names, strict=True)
            if lname == b"set-cookie"
        ]
        session = session_started(values)
        if session is None or not self._endpoint.instance_guid:
            return b""
        return vcap_cookie_header(self._endpoint.instance_guid, session)

    def _backend_failed(self, reason: str) -> None:
        endpoint = self._endpoint
        self.client.proxy.metrics.backend_errors += 1
        log.warning(
            "endpoint-failed",
            endpoint=str(endpoint),
            process_guid=endpoint.process_guid if endpoint else "",
            index=endpoint.index if endpoint else -1,
            error=reason,
        )
        backend, self.backend = self.backend, None
        if backend is not None:
            backend.abort()
        if self._response_started:
            # Part of the answer is out; cutting the connection is the only honest signal.
            self._finished = True
            self.client.abort()
            return
        # Bytes of the request may have reached the backend: no retry (retries.py).
        self._answer_error(errors.ENDPOINT_FAILURE, errors.ENDPOINT_FAILURE_MESSAGE)

    def _answer_error(self, kind: ErrorKind, message: str) -> None:
        if self._aborted or self._finished:
            return
        if self.upgrade or self.client.proxy.shutting_down:
            self.keep_alive = False
        self._status = kind.status
        self.client.write(errors.error_response(kind, message, keep_alive=self.keep_alive))
        self._finish()

    def _uncount(self) -> None:
        endpoint, self._counted = self._counted, None
        if endpoint is not None:
            self.client.proxy.in_flight.ended(endpoint)

    def _unscale(self) -> None:
        scaled, self._scaled = self._scaled, ()
        if scaled and self.client.proxy.activator is not None:
            self.client.proxy.activator.request_ended(scaled)

    def _finish(self, now: float | None = None) -> None:
        """The response is out, at loop time `now` (read here if not given)."""
        self._finished = True
        counted = self._counted
        if counted is not None:     # _uncount, inlined: this runs once per request
            self._counted = None
            self.client.proxy.in_flight.ended(counted)
        if self._scaled:
            self._unscale()
        client = self.client
        if now is None:
            now = client.loop.time()
        self._record(now)
        client.exchange_finished(self, now)

    def _record(self, now: float) -> None:
        """Count the request, log it at debug level, and send an RTR line to the app's logs."""
        client = self.client
        proxy = client.proxy
        duration_s = now - self._started_at
        endpoint = self._endpoint
        app = endpoint.process_guid if endpoint is not None else ""
        proxy.metrics.request_done(app, self._status, duration_s)
        if proxy.log_requests:
            log.debug(
                "request-done", host=self.host.decode("latin-1"), status=self._status, app=app,
                index=endpoint.index if endpoint is not None else -1, duration_s=duration_s,
            )
        if app and proxy.app_logs is not None and endpoint is not None:
            proxy.app_logs.add(app, endpoint.index, self.host, self.method, self.target,
                               self._status, duration_s, client.client_ip)
