"""`serve` run the way the CLI runs it, on uvloop in its own thread, driven over real sockets.

The other router tests run on the default asyncio loop; uvloop's transports differ in details
(writelines, flow control callbacks), so the main paths run here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import threading
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
import uvloop

from lattice.store import Etcd
from router import RouterConfig, serve
from tests.support_router import (
    Backend,
    RawClient,
    get,
    pattern,
    put_app,
    put_instance,
    put_service,
    run_backend,
    wait_for,
)

DOMAIN = "lattice.localhost"


class ThreadedRouter:
    def __init__(self, config: RouterConfig) -> None:
        self.config = config
        self.ready = threading.Event()
        self.stopped = threading.Event()
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._run, name="router-uvloop")

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            assert isinstance(self._loop, uvloop.Loop)
            ready = asyncio.Event()
            self._task = asyncio.create_task(serve(self.config, ready=ready))
            await ready.wait()
            self.ready.set()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

        try:
            uvloop.run(main())
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread, which fails
            self.error = exc
        finally:
            self.stopped.set()

    def start(self) -> None:
        self._thread.start()
        if not self.ready.wait(30):
            raise AssertionError(f"the router did not start: {self.error!r}")

    def stop(self) -> None:
        if self._loop is not None and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(30)
        assert not self._thread.is_alive(), "the router did not stop"
        assert self.error is None, repr(self.error)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def router(etcd_endpoint: str) -> Iterator[int]:
    server = ThreadedRouter(RouterConfig(etcd_endpoints=etcd_endpoint, port=free_port(),
                                         shutdown_grace_s=2))
    server.start()
    try:
        yield server.config.port
    finally:
        server.stop()


@pytest.fixture
async def backends() -> AsyncIterator[list[Backend]]:
    async with contextlib.AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(contextlib.asynccontextmanager(run_backend)(name))
            for name in ("b0", "b1")
        ]


async def routed(port: int, host: str) -> None:
    async def answers() -> bool:
        return (await get(port, host)).status == 200

    await wait_for(answers, what=f"{host} to be routed")


async def test_keep_alive_round_robin_and_pipelining_on_uvloop(
    etcd: Etcd, router: int, backends: list[Backend]
) -> None:
    host = f"web.{DOMAIN}"
    await put_app(etcd, "web", [host])
    for index, backend in enumerate(backends):
        await put_instance(etcd, "web", index, backend.port)

    async def both_routed() -> bool:
        names = {(await get(router, host)).json()["name"] for _ in range(2)}
        return names == {"b0", "b1"}

    await wait_for(both_routed, what="both backends")
    before = [b.connections() for b in backends]
    client = await RawClient.connect(router)
    try:
        await client.send(b"".join(RawClient.encode("GET", f"/?n={n}", host) for n in range(20)))
        responses = [await client.read_response() for _ in range(20)]
    finally:
        await client.close()
    assert [r.json()["path"] for r in responses] == [f"/?n={n}" for n in range(20)]
    assert {r.json()["name"] for r in responses} == {"b0", "b1"}
    # Sequential requests over one client connection reuse the pooled backend connections.
    assert [b.connections() - n for b, n in zip(backends, before, strict=True)] == [0, 0]


async def test_streaming_both_ways_on_uvloop(
    etcd: Etcd, router: int, backends: list[Backend]
) -> None:
    host = f"web.{DOMAIN}"
    await put_app(etcd, "web", [host])
    await put_instance(etcd, "web", 0, backends[0].port)
    await routed(router, host)
    size = 50 * 1024 * 1024
    upload = pattern(4 * 1024 * 1024)
    client = await RawClient.connect(router)
    try:
        down = await client.request("GET", f"/big/{size}", host)
        await client.send(
            f"POST /digest HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        for offset in range(0, len(upload), 65536):
            piece = upload[offset:offset + 65536]
            await client.send(b"%x\r\n" % len(piece) + piece + b"\r\n")
        await client.send(b"0\r\n\r\n")
        up = await client.read_response()
    finally:
        await client.close()
    assert hashlib.sha256(down.body).digest() == hashlib.sha256(pattern(size)).digest()
    assert up.json()["sha256"] == hashlib.sha256(upload).hexdigest()


async def test_websocket_on_uvloop(etcd: Etcd, router: int, backends: list[Backend]) -> None:
    doppler = f"doppler.{DOMAIN}"
    await put_service(etcd, "doppler", f"127.0.0.1:{backends[1].port}", [doppler])
    await routed(router, doppler)
    async with aiohttp.ClientSession() as session, session.ws_connect(
        f"http://127.0.0.1:{router}/ws", headers={"Host": doppler}
    ) as ws:
        for n in range(10):
            await ws.send_str(f"line {n}")
            assert await ws.receive_str(timeout=20) == f"b1:line {n}"
