"""The aggregator's HTTP and WebSocket endpoints (docs/architecture.md, "Log envelopes").

    GET /ingest                    WebSocket; producers send text frames, each a JSON array
    GET /apps/{app_id}/stream      WebSocket; one JSON text frame per envelope, live lines only;
                                   with ?recent=true the recent lines first, then live ones
    GET /apps/{app_id}/recentlogs  JSON array of the app's recent envelopes, oldest first
    GET /apps/{app_id}/crashes     JSON array: the last crash of each crashed instance
    GET /firehose                  WebSocket; every app's live lines. Behind the box's
                                   credentials; a box without credentials serves it to
                                   loopback peers only
    GET /health                    200 {"status": "ok"}

Handlers only translate between HTTP and the Aggregator. Every open WebSocket is tracked so that
shutdown can close them all, and abort those whose peer stopped reading (never wait for them).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import structlog
from aiohttp import WSCloseCode, WSMsgType, web

from lattice.auth import REALM, Credentials, unauthorized_body
from logagg.aggregator import Aggregator
from logagg.config import LogaggConfig
from logagg.envelope import Envelope, app_id_problem
from logagg.frames import decode_frame, encode_envelope
from logagg.hub import Subscription

log = structlog.get_logger("logagg.server")

# Producers batch up to a few hundred lines per frame; this leaves room and still bounds memory.
MAX_INGEST_FRAME_BYTES = 16 * 1024 * 1024
# Pings find peers that vanished without closing (a killed cell, a cut connection).
HEARTBEAT_S = 30.0
# A peer that does not answer our close within this long is cut off: it is not reading.
CLOSE_TIMEOUT_S = 2.0
INGEST_ACK = "ack"          # logagg.publisher.ACK: one per ingest frame, in order
# How often apps idle for longer than the config's idle_app_s are looked for.
IDLE_SWEEP_S = 60.0


@dataclass
class OpenSockets:
    """The WebSockets currently open, with their requests (to abort a peer that stopped reading)."""

    sockets: dict[web.WebSocketResponse, web.Request] = field(default_factory=dict)
    closing: bool = False

    @contextlib.contextmanager
    def track(self, request: web.Request, ws: web.WebSocketResponse) -> Iterator[None]:
        self.sockets[ws] = request
        try:
            yield
        finally:
            self.sockets.pop(ws, None)

    async def close_all(self) -> None:
        await asyncio.gather(*(close_websocket(ws, request)
                               for ws, request in list(self.sockets.items())))


AGGREGATOR = web.AppKey("aggregator", Aggregator)
OPEN_SOCKETS = web.AppKey("open_sockets", OpenSockets)
CREDENTIALS = web.AppKey("credentials", Credentials)


async def close_websocket(ws: web.WebSocketResponse, request: web.Request,
                          code: int = WSCloseCode.GOING_AWAY) -> None:
    """Close politely; if the peer does not answer in time, cut the connection."""
    try:
        await asyncio.wait_for(ws.close(code=code, message=b"log aggregator shutting down"),
                               CLOSE_TIMEOUT_S)
    except TimeoutError:
        # A timed-out close() only closes the transport, which waits to flush what the peer is
        # not reading: abort drops that and frees the socket now.
        transport = request.transport
        if transport is not None:
            transport.abort()
        log.warning("websocket-aborted", peer=request.remote, path=request.path)


def _error(status: int, error_type: str, message: str) -> web.Response:
    return web.json_response({"error": {"type": error_type, "message": message}}, status=status)


def _app_id_or_error(request: web.Request) -> str | web.Response:
    app_id = request.match_info["app_id"]
    problem = app_id_problem(app_id)
    if problem is not None:
        return _error(400, "InvalidRequest", f"app_id {problem}")
    return app_id


async def health(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def crashes(request: web.Request) -> web.Response:
    app_id = _app_id_or_error(request)
    if isinstance(app_id, web.Response):
        return app_id
    records = request.app[AGGREGATOR].crashes.crashes(app_id)
    return web.json_response([record.to_dict() for record in records])


def _wants_recent(request: web.Request) -> bool | web.Response:
    value = request.query.get("recent", "false").lower()
    if value in ("1", "true", "yes"):
        return True
    if value in ("0", "false", "no", ""):
        return False
    return _error(400, "InvalidRequest", f"recent must be true or false, got {value!r}")


async def recent_logs(request: web.Request) -> web.Response:
    app_id = _app_id_or_error(request)
    if isinstance(app_id, web.Response):
        return app_id
    envelopes = request.app[AGGREGATOR].recent.recent(app_id)
    return web.json_response([e.to_dict() for e in envelopes])


async def ingest(request: web.Request) -> web.StreamResponse:
    open_sockets = request.app[OPEN_SOCKETS]
    if open_sockets.closing:
        return _error(503, "ShuttingDown", "the log aggregator is shutting down")
    aggregator = request.app[AGGREGATOR]
    ws = web.WebSocketResponse(max_msg_size=MAX_INGEST_FRAME_BYTES, heartbeat=HEARTBEAT_S)
    await ws.prepare(request)
    producer_log = log.bind(peer=request.remote)
    producer_log.info("producer-connected")
    with open_sockets.track(request, ws):
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                if open_sockets.closing:
                    # Not ingested, not acked: the producer sends it again to the next
                    # aggregator, where subscribers can still receive it.
                    continue
                envelopes, problems = decode_frame(msg.data)
                for envelope in envelopes:
                    aggregator.ingest(envelope)
                # The producer keeps a frame until this ack, and resends it after a restart.
                with contextlib.suppress(ConnectionError):
                    await ws.send_str(INGEST_ACK)
                if problems:
                    producer_log.warning("ingest-frame-rejected", accepted=len(envelopes),
                                         rejected=len(problems), problems=problems[:5])
                # Frames already buffered are read without yielding; let the stream handlers
                # send between frames, or a burst of frames would overflow fast subscribers too.
                await asyncio.sleep(0)
            elif msg.type is WSMsgType.ERROR:
                producer_log.warning("producer-stream-error", error=str(ws.exception()))
            else:
                producer_log.warning("ingest-frame-rejected", accepted=0, rejected=1,
                                     problems=[f"{msg.type.name} frames are not accepted"])
    producer_log.info("producer-disconnected", close_code=ws.close_code)
    return ws


async def stream(request: web.Request) -> web.StreamResponse:
    app_id = _app_id_or_error(request)
    if isinstance(app_id, web.Response):
        return app_id
    wants_recent = _wants_recent(request)
    if isinstance(wants_recent, web.Response):
        return wants_recent
    aggregator = request.app[AGGREGATOR]
    if request.app[OPEN_SOCKETS].closing or aggregator.hub.closed:
        return _error(503, "ShuttingDown", "the log aggregator is shutting down")
    # Subscribe before the handshake: a client that has its 101 misses no line sent after it.
    backlog: list[Envelope] = []
    if wants_recent:
        backlog, subscription = aggregator.subscribe_with_recent(app_id)
    else:
        subscription = aggregator.hub.subscribe(app_id)
    return await _serve_subscription(request, subscription, backlog, app_id=app_id)


def _peer_is_loopback(request: web.Request) -> bool:
    try:
        return request.remote is not None and ipaddress.ip_address(request.remote).is_loopback
    except ValueError:
        return False    # a Unix socket peer or an unparsable address: not known to be local


async def firehose(request: web.Request) -> web.StreamResponse:
    credentials = request.app.get(CREDENTIALS)
    if credentials is None:
        # An open box is reachable on loopback only (lattice up refuses other addresses
        # without credentials); the firehose holds every app's lines, so it checks again.
        if not _peer_is_loopback(request):
            return _error(403, "Forbidden",
                          "the firehose is served to loopback peers only on a box without "
                          "credentials")
    elif not credentials.matches(request.headers.get("Authorization")):
        response = web.json_response(unauthorized_body(), status=401)
        response.headers["WWW-Authenticate"] = f'Basic realm="{REALM}"'
        return response
    hub = request.app[AGGREGATOR].hub
    if request.app[OPEN_SOCKETS].closing or hub.closed:
        return _error(503, "ShuttingDown", "the log aggregator is shutting down")
    return await _serve_subscription(request, hub.subscribe_all(), [], app_id="*")


async def _serve_subscription(request: web.Request, subscription: Subscription,
                              backlog: list[Envelope], *, app_id: str) -> web.StreamResponse:
    open_sockets = request.app[OPEN_SOCKETS]
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S)
    try:
        await ws.prepare(request)
    except BaseException:
        subscription.close()
        raise
    subscriber_log = log.bind(peer=request.remote, app_id=app_id)
    subscriber_log.info("subscriber-connected", recent=len(backlog))

    async def until_peer_closes() -> None:
        # Subscribers send nothing we need, but reading is how a close (or a lost peer) shows.
        async for _ in ws:
            pass
        subscription.close()

    with open_sockets.track(request, ws):
        listener = asyncio.create_task(until_peer_closes())
        try:
            for envelope in backlog:
                if subscription.closed:
                    break
                await ws.send_str(encode_envelope(envelope))
            async for envelope in subscription:
                await ws.send_str(encode_envelope(envelope))
        except ConnectionError as exc:
            subscriber_log.info("subscriber-gone", error=str(exc))
        finally:
            subscription.close()
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            await close_websocket(ws, request, WSCloseCode.GOING_AWAY
                                  if open_sockets.closing else WSCloseCode.OK)
    subscriber_log.info("subscriber-disconnected", dropped=subscription.dropped_total)
    return ws


async def _sweep_idle_apps(app: web.Application) -> AsyncIterator[None]:
    """Periodically forget the recent lines of apps that wrote nothing for an hour."""

    async def sweep() -> None:
        while True:
            await asyncio.sleep(IDLE_SWEEP_S)
            dropped = app[AGGREGATOR].drop_idle()
            if dropped:
                log.info("idle-apps-dropped", apps=dropped)

    task = asyncio.create_task(sweep(), name="logagg-idle-sweep")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def close_websockets(app: web.Application) -> None:
    """End every subscription and close every WebSocket (idempotent; also run on shutdown).

    New WebSockets are refused first; subscriptions end next so that stream handlers stop
    sending; then every socket is closed, each within CLOSE_TIMEOUT_S.
    """
    app[OPEN_SOCKETS].closing = True
    app[AGGREGATOR].hub.close()
    await app[OPEN_SOCKETS].close_all()


def create_app(config: LogaggConfig, *, credentials: Credentials | None = None) -> web.Application:
    """`credentials`: the box's, required by the firehose (None: loopback peers only)."""
    app = web.Application()
    app[AGGREGATOR] = Aggregator(config)
    app[OPEN_SOCKETS] = OpenSockets()
    if credentials is not None:
        app[CREDENTIALS] = credentials

    app.on_shutdown.append(close_websockets)
    app.cleanup_ctx.append(_sweep_idle_apps)
    app.router.add_get("/health", health)
    app.router.add_get("/ingest", ingest)
    app.router.add_get("/firehose", firehose)
    app.router.add_get("/apps/{app_id}/stream", stream)
    app.router.add_get("/apps/{app_id}/recentlogs", recent_logs)
    app.router.add_get("/apps/{app_id}/crashes", crashes)
    return app


__all__ = ["AGGREGATOR", "close_websockets", "create_app"]
