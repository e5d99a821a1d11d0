"""Helpers for the router's tests: waiting on conditions, state in etcd, real backends, and a
raw HTTP/1.1 client that shows exactly what crosses one connection."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import httptools
from aiohttp import WSMsgType, web

from lattice.models import (
    ActualLRP,
    ActualState,
    ModificationTag,
    PortMapping,
    Route,
    SchedulingInfo,
    ServiceRecord,
)
from lattice.store import Etcd, keys

Predicate = Callable[[], bool] | Callable[[], Awaitable[bool]]


async def wait_for(predicate: Predicate, within: float = 20.0, what: str = "condition") -> None:
    """Poll `predicate` (sync or async) until it holds; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.02)


# -- state in etcd ----------------------------------------------------------------------------


async def put_app(etcd: Etcd, guid: str, hostnames: list[str], port: int = 8080) -> None:
    info = SchedulingInfo(
        process_guid=guid,
        instances=1,
        memory_mb=64,
        disk_mb=0,
        cpu_weight=100,
        routes=(Route(tuple(hostnames), port),),
        modification_tag=ModificationTag("epoch"),
    )
    await etcd.put(keys.scheduling(guid), json.dumps(info.to_dict()).encode())


async def put_instance(
    etcd: Etcd,
    guid: str,
    index: int,
    host_port: int,
    *,
    state: ActualState = ActualState.RUNNING,
    container_port: int = 8080,
    address: str = "127.0.0.1",
) -> None:
    actual = ActualLRP(
        process_guid=guid,
        index=index,
        instance_guid=f"{guid}-instance-{index}",
        state=state,
        since=time.time_ns(),
        cell_id="cell-0",
        address=address,
        ports=(PortMapping(container_port, host_port),),
    )
    await etcd.put(keys.actual(guid, index), json.dumps(actual.to_dict()).encode())


async def put_service(etcd: Etcd, name: str, address: str, hostnames: list[str]) -> None:
    record = ServiceRecord(
        name=name, instance_id="one", address=address, hostnames=tuple(hostnames)
    )
    await etcd.put(keys.service(name, "one"), json.dumps(record.to_dict()).encode())


# -- backends ---------------------------------------------------------------------------------


def pattern(size: int) -> bytes:
    """Deterministic, non-repeating-looking bytes, so a reordered or lost chunk is detected."""
    block = hashlib.sha256(b"lattice").digest() * 2048   # 64 KiB
    whole, rest = divmod(size, len(block))
    return block * whole + block[:rest]


@dataclass
class Backend:
    """An aiohttp server on 127.0.0.1 that says who it is and what it received."""

    name: str
    port: int = 0
    peers: list[tuple[str, int]] = field(default_factory=list)   # one per request
    requests: int = 0

    def connections(self) -> int:
        return len(set(self.peers))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/", self.whoami)
        app.router.add_post("/digest", self.digest)
        app.router.add_get("/big/{size}", self.big)
        app.router.add_get("/ws", self.websocket)
        app.router.add_get("/session", self.session)
        app.router.add_route("*", "/{tail:.*}", self.whoami)     # any other path: who am I
        return app

    def _seen(self, request: web.Request) -> None:
        self.requests += 1
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer:
            self.peers.append((str(peer[0]), int(peer[1])))

    async def whoami(self, request: web.Request) -> web.Response:
        self._seen(request)
        return web.json_response(
            {
                "name": self.name,
                "method": request.method,
                "path": request.path_qs,
                "headers": [[k, v] for k, v in request.headers.items()],
            }
        )

    async def digest(self, request: web.Request) -> web.Response:
        """Reads the body as it streams in; answers its length and sha256."""
        self._seen(request)
        digest = hashlib.sha256()
        size = 0
        async for data in request.content.iter_any():
            digest.update(data)
            size += len(data)
        return web.json_response({"size": size, "sha256": digest.hexdigest(),
                                  "chunked": request.headers.get("Transfer-Encoding", "")})

    async def big(self, request: web.Request) -> web.StreamResponse:
        """Streams `size` bytes of `pattern` in 256 KiB writes, chunked unless ?length=1."""
        self._seen(request)
        size = int(request.match_info["size"])
        response = web.StreamResponse()
        if request.query.get("length"):
            response.content_length = size
        await response.prepare(request)
        body = pattern(size)
        view = memoryview(body)
        for offset in range(0, size, 256 * 1024):
            await response.write(view[offset:offset + 256 * 1024].tobytes())
        await response.write_eof()
        return response

    async def session(self, request: web.Request) -> web.Response:
        """Starts a Java-style session: sets JSESSIONID, as sticky-session apps do."""
        self._seen(request)
        response = web.json_response({"name": self.name})
        response.headers["Set-Cookie"] = f"JSESSIONID={self.name}-session; Path=/; Max-Age=600"
        return response

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        self._seen(request)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            if message.type is WSMsgType.TEXT:
                await ws.send_str(f"{self.name}:{message.data}")
            elif message.type is WSMsgType.BINARY:
                await ws.send_bytes(message.data)
        return ws


async def run_backend(name: str) -> AsyncIterator[Backend]:
    backend = Backend(name)
    runner = web.AppRunner(backend.app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    backend.port = int(runner.addresses[0][1])
    try:
        yield backend
    finally:
        await runner.cleanup()


# -- a raw HTTP/1.1 client --------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: dict[str, str]          # lower-cased names; the last value wins
    body: bytes

    def json(self) -> dict[str, object]:
        return json.loads(self.body)   # type: ignore[no-any-return]


class _Collector:
    """httptools callbacks that turn a stream of responses into a list of Response."""

    def __init__(self) -> None:
        self.responses: list[Response] = []
        self.parser = httptools.HttpResponseParser(self)
        self.head_done = False
        self._headers: dict[str, str] = {}
        self._body = bytearray()

    def on_message_begin(self) -> None:
        self.head_done = False
        self._headers = {}
        self._body = bytearray()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode().lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.head_done = True

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        self.end()

    def end(self) -> None:
        self.responses.append(
            Response(self.parser.get_status_code(), self._headers, bytes(self._body))
        )
        self.head_done = False


class RawClient:
    """One TCP connection to the router; sends raw bytes, reads whole responses in order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._collector = _Collector()
        self._taken = 0

    @classmethod
    async def connect(cls, port: int) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def close(self) -> None:
        self.writer.close()
        # The router may have closed first; the socket is gone either way.
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_response(self, within: float = 20) -> Response:
        collector = self._collector
        async with asyncio.timeout(within):
            while len(collector.responses) <= self._taken:
                data = await self.reader.read(65536)
                if not data:
                    if collector.head_done:
                        collector.end()     # a body that ends with the connection
                        break
                    raise ConnectionError("the router closed the connection")
                collector.parser.feed_data(data)
        self._taken += 1
        return collector.responses[self._taken - 1]

    async def read_head(self, within: float = 20) -> bytes:
        """The raw head of the next response (for HEAD requests, whose parse needs context)."""
        async with asyncio.timeout(within):
            return await self.reader.readuntil(b"\r\n\r\n")

    @staticmethod
    def encode(method: str, path: str, host: str | None,
               headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
        lines = [f"{method} {path} HTTP/1.1"]
        if host is not None:
            lines.append(f"Host: {host}")
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        if body:
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    async def request(self, method: str, path: str, host: str | None,
                      headers: dict[str, str] | None = None, body: bytes = b"") -> Response:
        await self.send(self.encode(method, path, host, headers, body))
        return await self.read_response()

    async def closed_by_peer(self) -> bool:
        try:
            async with asyncio.timeout(20):
                return await self.reader.read(1) == b""
        except ConnectionResetError:
            return True


async def get(port: int, host: str | None, path: str = "/", **kw: object) -> Response:
    """One request on a fresh connection."""
    client = await RawClient.connect(port)
    try:
        return await client.request("GET", path, host, **kw)  # type: ignore[arg-type]
    finally:
        await client.close()
