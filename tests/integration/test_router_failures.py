"""Backends that die mid-stream or are slow, and clients that leave mid-response."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from lattice.store import Etcd
from router import RouterConfig, RouterServer
from tests.support_router import get, put_app, put_instance, run_backend, wait_for

DOMAIN = "lattice.localhost"
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def router(etcd_endpoint: str) -> AsyncIterator[RouterServer]:
    server = RouterServer(RouterConfig(etcd_endpoints=etcd_endpoint, port=0, shutdown_grace_s=2))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def raw_backend(handler: Handler) -> AsyncIterator[int]:
    async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await handler(reader, writer)
        writer.close()

    server = await asyncio.start_server(guarded, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def route(etcd: Etcd, router: RouterServer, guid: str, port: int) -> str:
    host = f"{guid}.{DOMAIN}"
    await put_app(etcd, guid, [host])
    await put_instance(etcd, guid, 0, port)
    await wait_for(lambda: getattr(router.table.lookup(host), "endpoints", ()) != (),
                   what=f"a route for {host}")
    return host


async def read_all(reader: asyncio.StreamReader) -> bytes:
    data = b""
    async with asyncio.timeout(20):
        while chunk := await reader.read(65536):
            data += chunk
    return data


async def test_a_backend_killed_mid_stream_cuts_the_client_off(
    etcd: Etcd, router: RouterServer
) -> None:
    async def dies(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 100_000)
        await writer.drain()
        writer.transport.abort()

    async with raw_backend(dies) as port:
        host = await route(etcd, router, "dies", port)
        reader, writer = await asyncio.open_connection("127.0.0.1", router.port)
        try:
            writer.write(f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            received = await read_all(reader)
        finally:
            writer.close()
        head, _, body = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK")
        # The client sees a body shorter than announced, then the end of the connection:
        # no silent truncation into a "complete" response.
        assert len(body) == 100_000
        assert router.proxy.metrics.backend_errors == 1
        assert router.proxy.in_flight.total() == 0


async def test_a_client_gone_mid_response_releases_the_backend(
    etcd: Etcd, router: RouterServer
) -> None:
    backend_done = asyncio.Event()

    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            while True:
                writer.write(b"10000\r\n" + b"y" * 0x10000 + b"\r\n")
                await writer.drain()
        finally:
            backend_done.set()

    async with raw_backend(endless) as port:
        host = await route(etcd, router, "endless", port)
        reader, writer = await asyncio.open_connection("127.0.0.1", router.port)
        writer.write(f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        await reader.readexactly(200_000)
        writer.transport.abort()
        # The router closes the backend's connection rather than pooling a half-read one.
        async with asyncio.timeout(20):
            await backend_done.wait()
        await wait_for(lambda: not router.proxy.connections, what="the client's connection gone")
        assert router.proxy.in_flight.total() == 0
        assert router.proxy.upstream.idle_count(
            router.table.lookup(host).endpoints[0]  # type: ignore[union-attr]
        ) == 0


async def test_a_slow_backend_does_not_hold_up_others(
    etcd: Etcd, router: RouterServer
) -> None:
    release = asyncio.Event()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await release.wait()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow")
        await writer.drain()

    async with raw_backend(slow) as slow_port, \
            contextlib.asynccontextmanager(run_backend)("fast") as fast:
        slow_host = await route(etcd, router, "slow", slow_port)
        fast_host = await route(etcd, router, "fast", fast.port)
        pending = [asyncio.create_task(get(router.port, slow_host)) for _ in range(5)]
        for _ in range(10):
            assert (await get(router.port, fast_host)).status == 200
        assert not any(task.done() for task in pending)
        release.set()
        for response in await asyncio.gather(*pending):
            assert (response.status, response.body) == (200, b"slow")
