"""The router against a real etcd, real sockets and real backends (aiohttp servers on loopback)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest

from lattice.models import ActualState
from lattice.store import Etcd
from router import RouterConfig, RouterServer
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


@pytest.fixture
async def backends() -> AsyncIterator[list[Backend]]:
    async with contextlib.AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(contextlib.asynccontextmanager(run_backend)(name))
            for name in ("b0", "b1", "b2")
        ]


@pytest.fixture
async def router(etcd_endpoint: str) -> AsyncIterator[RouterServer]:
    server = RouterServer(RouterConfig(etcd_endpoints=etcd_endpoint, port=0, shutdown_grace_s=2))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def endpoint_count(router: RouterServer, host: str) -> int | None:
    pool = router.table.lookup(host)
    return None if pool is None else len(pool.endpoints)


async def routed(router: RouterServer, host: str, count: int) -> None:
    await wait_for(lambda: endpoint_count(router, host) == count,
                   what=f"{count} endpoints for {host}")


async def app_on(etcd: Etcd, router: RouterServer, guid: str, backends: list[Backend]) -> str:
    host = f"{guid}.{DOMAIN}"
    await put_app(etcd, guid, [host])
    for index, backend in enumerate(backends):
        await put_instance(etcd, guid, index, backend.port)
    await routed(router, host, len(backends))
    return host


# -- errors -----------------------------------------------------------------------------------


async def test_unknown_host_is_404_unknown_route(router: RouterServer) -> None:
    response = await get(router.port, f"nope.{DOMAIN}")
    assert response.status == 404
    assert response.headers["x-cf-routererror"] == "unknown_route"
    assert response.body == (
        f"404 Not Found: Requested route ('nope.{DOMAIN}') does not exist.\n".encode()
    )


async def test_missing_host_is_400_empty_host(router: RouterServer) -> None:
    response = await get(router.port, None)
    assert response.status == 400
    assert response.headers["x-cf-routererror"] == "empty_host"
    assert response.body.startswith(b"400 Bad Request: ")


async def test_route_with_no_running_instance_is_503_no_endpoints(
    etcd: Etcd, router: RouterServer, backends: list[Backend]
) -> None:
    host = f"web.{DOMAIN}"
    await put_app(etcd, "web", [host])
    await put_instance(etcd, "web", 0, backends[0].port, state=ActualState.CLAIMED)
    await wait_for(lambda: router.table.lookup(host) is not None, what="the route")
    response = await get(router.port, host)
    assert response.status == 503
    assert response.headers["x-cf-routererror"] == "no_endpoints"
    assert response.body.startswith(b"503 Service Unavailable: ")
    assert backends[0].requests == 0


async def test_unparseable_request_is_400_and_closed(router: RouterServer) -> None:
    client = await RawClient.connect(router.port)
    try:
        await client.send(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
        response = await client.read_response()
        assert response.status == 400
        assert response.headers["x-cf-routererror"] == "bad_request"
        assert await client.closed_by_peer()
    finally:
        await client.close()


# -- balancing and the table ------------------------------------------------------------------


async def test_requests_reach_every_backend_in_turn(
    etcd: Etcd, router: RouterServer, backends: list[Backend]
) -> None:
    host = await app_on(etcd, router, "web", backends)
    seen = [(await get(router.port, host)).json()["name"] for _ in range(6)]
    assert set(seen[:3]) == {"b0", "b1", "b2"}
    assert seen[3:] == seen[:3]


async def test_crashed_instance_stops_receiving_traffic(
    etcd: Etcd, router: RouterServer, backends: list[Backend]
) -> None:
    host = await app_on(etcd, router, "web", backends[:2])
    await put_instance(etcd, "web", 1, backends[1].port, state=ActualState.CRASHED)
    await routed(router, host, 1)
    before = backends[1].requests
    names = {(await get(router.port, host)).json()["name"] for _ in range(6)}
    assert names == {"b0"}
    assert backends[1].requests == before


async def test_service_host_routes_to_its_address_and_beats_an_app_route(
    etcd: Etcd, router: RouterServer, backends: list[Backend]
) -> None:
    receptor = f"receptor.{DOMAIN}"
    await put_app(etcd, "impostor", [receptor])
    await put_instance(etcd, "impostor", 0, backends[1].port)
    await routed(router, receptor, 1)
    await put_service(etcd, "receptor", f"127.0.0.1:{backends[0].port}", [receptor])
    service_address = f"127.0.0.1:{backends[0].port}"
    await wait_for(lambda: str(router.table.snapshot()[receptor][0]) == service_address,
                   what="the service record")
    response = await get(router.port, f"Receptor.Lattice.LOCALHOST:{router.port}")
    assert response.status == 200
    assert response.json()["name"] == "b0"
    headers = dict(response.json()["headers"])  # type: ignore[arg-type]
    assert "X-CF-ApplicationID" not in headers   # a box service is not an app


# -- failures and retries ---------------------------------------------------------------------


async def test_dead_backend_is_retried_on_a_live_one(
    etcd: Etcd, router: RouterServer, backends: list[Backend]
) -> None:
    host = f"web.{DOMAIN}"
    await put_app(etcd, "web", [host])
    await put_instance(etcd, "web", 0, free_port())          # nothing listens there
    await put_instance(etcd, "web", 1, backends[0].port)
    await routed(router, host, 2)
    for _ in range(4):
        response = await get(router.port, host)
        assert response.status == 200
        assert response.json()["name"] == "b0"


async def test_only_dead_backends_give_502_endpoint_failure(
    etcd: Etcd, router: RouterServer
) -> None:
    host = f"web.{DOMAIN}"
    await put_app(etcd, "web", [host])
    for index in range(4):
        await put_instance(etcd, "web", index, free_port())
    await routed(router, host, 4)
    response = await get(router.port, host)
    assert response.status == 502
    assert response.headers["x-cf-routererror"] == "endpoint_failure"
    assert response.body.startswith(b"502 Bad Gateway: ")


async def test_backend_that_closes_without_answering_gives_502(
    etcd: Etcd, router: RouterServer
) -> None:
    accepted = 0

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    try:
        host = f"web.{DOMAIN}"
        await put_app(etcd, "web", [host])
        await put_instance(etcd, "web", 0, server.sockets[0].getsockname()[1])
        await routed(router, host, 1)
        response = await get(router.port, host)
        assert response.status == 502
        assert response.headers["x-cf-routererror"] == "endpoint_failure"
        assert accepted == 1     # bytes were sent: no retry
    finally:
        server.close()
        await server.wait_closed()


# -- connections ------------------------------------------------------------------------------


async def test_keep_alive_reuses_one_backend_connection(
    etcd: Etcd, router: RouterServer, backends: list[Backend]
) -> None:
    host = await app_on(etcd, router, "web", backends[:1])
    client = await RawClient.connect(router.port)
    try:
        for i in range(30):
            response = await client.request("GET", f"/?i={i}", host)
            assert response.status == 200
            assert response.json()["path"] == f"/?i={i}"
    finally:
        await client.close()
    assert backends[0].requests == 30
    assert backends[0].connections() == 1


async def test_pipelined_requests_are_answered_in_order(
    etcd: Etcd, router: RouterServer, backends: list[Backend]
) -> None:
    host = await app_on(etcd, router, "web", backends[:1])
    client = await RawClient.connect(router.port)
    try:
        await client.send(b"".join(
            RawClient.encode("GET", f"/?n={n}", host if n != 2 else f"nope.{DOMAIN}")
            for n in range(5)
        ))
        responses = [await client.read_response() for _ in range(5)]
    finally:
        await client.close()
    assert [r.status for r in responses] == [200, 200, 404, 200, 200]
    assert [r.json()["path"] for r in responses if r.status == 200] == [
        "/?n=0", "/?n=1", "/?n=3", "/?n=4"
    ]


async def test_head_response_has_no_body_and_the_connection_goes_on(
    etcd: Etcd, router: RouterServer, backends: list[Backend]
) -> None:
    host = await app_on(etcd, router, "web", backends[:1])
    client = await RawClient.connect(router.port)
    try:
        await client.send(RawClient.encode("HEAD", "/", host))
        head = await client.read_head()
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"Content-Length: " in head
        response = await client.request("GET", "/?after=head", host)
        assert response.json()["path"] == "/?after=head"
    finally:
        await client.close()


async def test_added_and_removed_headers(
    etcd: Etcd, router: RouterServer, backends: list[Backend]
) -> None:
    host = await app_on(etcd, router, "web", backends[:1])
    response = await get(router.port, host, headers={
        "X-Forwarded-For": "10.1.2.3",
        "X-Forwarded-Proto": "https",
        "X-CF-ApplicationID": "spoofed",
        "Connection": "keep-alive, X-Secret-Hop",
        "X-Secret-Hop": "drop me",
        "Keep-Alive": "timeout=5",
    })
    headers = {k.lower(): v for k, v in response.json()["headers"]}  # type: ignore[union-attr]
    assert headers["x-forwarded-for"] == "10.1.2.3, 127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-cf-applicationid"] == "web"
    assert headers["x-cf-instanceid"] == "web-instance-0"
    assert uuid.UUID(headers["x-vcap-request-id"]).version == 4
    assert int(headers["x-request-start"]) > 1_600_000_000_000
    for hop in ("x-secret-hop", "keep-alive", "connection"):
        assert hop not in headers


# -- streaming --------------------------------------------------------------------------------


async def test_chunked_request_body_streams_through(
    etcd: Etcd, router: RouterServer, backends: list[Backend]
) -> None:
    host = await app_on(etcd, router, "web", backends[:1])
    body = pattern(8 * 1024 * 1024 + 17)
    client = await RawClient.connect(router.port)
    try:
        await client.send(
            f"POST /digest HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        step = 100_003
        for offset in range(0, len(body), step):
            piece = body[offset:offset + step]
            await client.send(b"%x\r\n" % len(piece) + piece + b"\r\n")
        await client.send(b"0\r\n\r\n")
        response = await client.read_response()
        # The connection goes on after a chunked request.
        again = await client.request("POST", "/digest", host, body=b"small")
    finally:
        await client.close()
    assert response.status == 200
    assert response.json() == {
        "size": len(body), "sha256": hashlib.sha256(body).hexdigest(), "chunked": "chunked"
    }
    assert again.json()["size"] == 5


@pytest.mark.parametrize("length", [False, True], ids=["chunked", "content-length"])
async def test_large_response_streams_through(
    etcd: Etcd, router: RouterServer, backends: list[Backend], length: bool
) -> None:
    host = await app_on(etcd, router, "web", backends[:1])
    size = 50 * 1024 * 1024
    client = await RawClient.connect(router.port)
    try:
        response = await client.request("GET", f"/big/{size}?length={int(length)}" if length
                                        else f"/big/{size}", host)
    finally:
        await client.close()
    assert response.status == 200
    assert len(response.body) == size
    assert hashlib.sha256(response.body).digest() == hashlib.sha256(pattern(size)).digest()


async def test_a_client_that_stops_reading_pauses_the_backend(
    etcd: Etcd, router: RouterServer, backends: list[Backend]
) -> None:
    host = await app_on(etcd, router, "web", backends[:1])
    size = 50 * 1024 * 1024
    client = await RawClient.connect(router.port)
    try:
        await client.send(RawClient.encode("GET", f"/big/{size}", host))

        def backend_paused() -> bool:
            return any(
                c.write_paused and c.backend_reading_paused for c in router.proxy.connections
            )

        # The client reads nothing yet: the router must stop reading the backend instead of
        # buffering the 50 MB itself.
        await wait_for(backend_paused, what="the router to stop reading the backend")
        response = await client.read_response()
    finally:
        await client.close()
    assert len(response.body) == size
    assert hashlib.sha256(response.body).digest() == hashlib.sha256(pattern(size)).digest()


# -- upgrades ---------------------------------------------------------------------------------


async def test_websocket_echo_through_the_router(
    etcd: Etcd, router: RouterServer, backends: list[Backend]
) -> None:
    doppler = f"doppler.{DOMAIN}"
    await put_service(etcd, "doppler", f"127.0.0.1:{backends[2].port}", [doppler])
    await routed(router, doppler, 1)
    async with aiohttp.ClientSession() as session, session.ws_connect(
        f"http://127.0.0.1:{router.port}/ws", headers={"Host": doppler}
    ) as ws:
        await ws.send_str("hello")
        assert await ws.receive_str(timeout=20) == "b2:hello"
        blob = pattern(3 * 1024 * 1024)
        await ws.send_bytes(blob)
        assert await ws.receive_bytes(timeout=20) == blob


# -- lifecycle --------------------------------------------------------------------------------


async def test_shutdown_lets_a_request_in_flight_finish(
    etcd_endpoint: str, etcd: Etcd
) -> None:
    release = asyncio.Event()
    entered = asyncio.Event()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        entered.set()
        await release.wait()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone")
        await writer.drain()
        writer.close()

    backend = await asyncio.start_server(slow, "127.0.0.1", 0)
    server = RouterServer(RouterConfig(etcd_endpoints=etcd_endpoint, port=0, shutdown_grace_s=20))
    await server.start()
    stopping: asyncio.Task[None] | None = None
    try:
        host = f"web.{DOMAIN}"
        await put_app(etcd, "web", [host])
        await put_instance(etcd, "web", 0, backend.sockets[0].getsockname()[1])
        await routed(server, host, 1)
        client = await RawClient.connect(server.port)
        try:
            await client.send(RawClient.encode("GET", "/", host))
            await asyncio.wait_for(entered.wait(), 20)
            stopping = asyncio.create_task(server.stop())
            await wait_for(lambda: server.proxy.shutting_down, what="shutdown to begin")
            with pytest.raises(ConnectionRefusedError):
                await asyncio.open_connection("127.0.0.1", server.port)
            release.set()
            response = await client.read_response()
            assert response.body == b"done"
            assert response.headers["connection"] == "close"
            assert await client.closed_by_peer()
        finally:
            await client.close()
        await asyncio.wait_for(stopping, 20)
    finally:
        if stopping is None:
            await server.stop()
        backend.close()
        await backend.wait_closed()


# -- backends that answer the old way ---------------------------------------------------------


async def test_a_body_that_ends_with_the_backends_connection(
    etcd: Etcd, router: RouterServer
) -> None:
    """An HTTP/1.0-style backend sends no length and closes: HTTP/1.1 clients get chunks,
    HTTP/1.0 clients get the body up to the close."""

    async def old_style(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + b"x" * 100_000)
        await writer.drain()
        writer.close()

    backend = await asyncio.start_server(old_style, "127.0.0.1", 0)
    try:
        host = f"old.{DOMAIN}"
        await put_app(etcd, "old", [host])
        await put_instance(etcd, "old", 0, backend.sockets[0].getsockname()[1])
        await routed(router, host, 1)
        client = await RawClient.connect(router.port)
        try:
            first = await client.request("GET", "/", host)
            second = await client.request("GET", "/", host)   # the client connection lives on
        finally:
            await client.close()
        assert first.headers["transfer-encoding"] == "chunked"
        assert first.body == second.body == b"x" * 100_000

        client = await RawClient.connect(router.port)
        try:
            await client.send(f"GET / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
            old = await client.read_response()
        finally:
            await client.close()
        assert old.headers["connection"] == "close"
        assert "transfer-encoding" not in old.headers
        assert old.body == b"x" * 100_000
    finally:
        backend.close()
        await backend.wait_closed()


async def test_a_backend_that_never_answers_times_out_with_502(
    etcd_endpoint: str, etcd: Etcd
) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()       # until the router gives up and closes
        writer.close()

    backend = await asyncio.start_server(silent, "127.0.0.1", 0)
    server = RouterServer(RouterConfig(etcd_endpoints=etcd_endpoint, port=0,
                                       response_timeout_s=0.5, shutdown_grace_s=2))
    await server.start()
    try:
        host = f"mute.{DOMAIN}"
        await put_app(etcd, "mute", [host])
        await put_instance(etcd, "mute", 0, backend.sockets[0].getsockname()[1])
        await routed(server, host, 1)
        response = await get(server.port, host)
        assert response.status == 502
        assert response.headers["x-cf-routererror"] == "endpoint_failure"
    finally:
        await server.stop()
        backend.close()
        await backend.wait_closed()


async def test_a_client_that_shuts_its_sending_side_still_gets_its_answer(
    etcd: Etcd, router: RouterServer, backends: list[Backend]
) -> None:
    host = await app_on(etcd, router, "web", backends[:1])
    client = await RawClient.connect(router.port)
    try:
        await client.send(RawClient.encode("GET", "/?half=closed", host))
        client.writer.write_eof()
        response = await client.read_response()
        assert response.json()["path"] == "/?half=closed"
        assert await client.closed_by_peer()
    finally:
        await client.close()


async def test_an_oversized_head_is_refused(router: RouterServer) -> None:
    client = await RawClient.connect(router.port)
    try:
        await client.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n")
        response = await client.read_response()
        assert response.status == 400
        assert b"request head larger than 65536 bytes" in response.body
    finally:
        await client.close()


async def test_idle_and_never_finished_heads_are_closed(etcd_endpoint: str) -> None:
    server = RouterServer(RouterConfig(etcd_endpoints=etcd_endpoint, port=0,
                                       client_idle_timeout_s=0.5, shutdown_grace_s=2))
    await server.start()
    idle = await RawClient.connect(server.port)
    slow = await RawClient.connect(server.port)
    try:
        await slow.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow")    # and never the rest
        assert await idle.closed_by_peer()
        assert await slow.closed_by_peer()
    finally:
        await idle.close()
        await slow.close()
        await server.stop()


async def test_a_backend_that_answers_twice_is_not_reused(
    etcd: Etcd, router: RouterServer
) -> None:
    connections = 0

    async def chatty(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        with contextlib.suppress(ConnectionError):
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none"
                             b"HTTP/1.1 500 Oops\r\nContent-Length: 3\r\n\r\ntwo")
                await writer.drain()
        writer.close()

    backend = await asyncio.start_server(chatty, "127.0.0.1", 0)
    try:
        host = f"chatty.{DOMAIN}"
        await put_app(etcd, "chatty", [host])
        await put_instance(etcd, "chatty", 0, backend.sockets[0].getsockname()[1])
        await routed(router, host, 1)
        client = await RawClient.connect(router.port)
        try:
            for _ in range(3):
                response = await client.request("GET", "/", host)
                assert (response.status, response.body) == (200, b"one")
        finally:
            await client.close()
        assert connections == 3
    finally:
        backend.close()
        await backend.wait_closed()


async def test_two_routers_can_share_a_port_with_reuse_port(etcd_endpoint: str) -> None:
    first = RouterServer(RouterConfig(etcd_endpoints=etcd_endpoint, port=0, reuse_port=True))
    await first.start()
    try:
        second = RouterServer(RouterConfig(etcd_endpoints=etcd_endpoint, port=first.port,
                                           reuse_port=True))
        await second.start()
        try:
            assert second.port == first.port
            assert (await get(first.port, f"nope.{DOMAIN}")).status == 404
        finally:
            await second.stop()
    finally:
        await first.stop()
