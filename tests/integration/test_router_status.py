"""The status port, least-connections and dial cool-downs, with a real router and backends."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import aiohttp

from lattice.auth import Credentials
from lattice.store import Etcd
from router import RouterConfig, RouterServer
from tests.support_router import get, put_app, put_instance, run_backend, wait_for

DOMAIN = "lattice.localhost"


def endpoint_count(router: RouterServer, host: str) -> int:
    pool = router.table.lookup(host)
    return 0 if pool is None else len(pool.endpoints)


@contextlib.asynccontextmanager
async def running(etcd_endpoint: str, credentials: Credentials | None = None,
                  **options: object) -> AsyncIterator[RouterServer]:
    config = RouterConfig(etcd_endpoints=etcd_endpoint, port=0, status_port=0,
                          shutdown_grace_s=5, **options)  # type: ignore[arg-type]
    server = RouterServer(config, credentials=credentials)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def held_backend() -> AsyncIterator[tuple[int, asyncio.Event, list[int]]]:
    """A backend that answers only once `release` is set; yields (port, release, heads seen)."""
    release = asyncio.Event()
    seen: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while await reader.readuntil(b"\r\n\r\n"):
                seen.append(1)
                await release.wait()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nheld")
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], release, seen
    finally:
        release.set()
        server.close()
        await server.wait_closed()


async def status_get(router: RouterServer, path: str,
                     auth: Credentials | None = None) -> tuple[int, str]:
    headers = {"Authorization": auth.header()} if auth else {}
    async with aiohttp.ClientSession() as session, session.get(
        f"http://127.0.0.1:{router.status_port}{path}", headers=headers
    ) as response:
        return response.status, await response.text()


async def test_health_metrics_and_routes(etcd_endpoint: str, etcd: Etcd) -> None:
    async with running(etcd_endpoint) as router, \
            contextlib.asynccontextmanager(run_backend)("b0") as backend:
        host = f"stat.{DOMAIN}"
        await put_app(etcd, "stat", [host])
        await put_instance(etcd, "stat", 0, backend.port)
        await wait_for(lambda: endpoint_count(router, host) == 1, what="the route")
        assert await status_get(router, "/health") == (200, '{"status": "ok"}')
        for _ in range(3):
            assert (await get(router.port, host)).status == 200
        assert (await get(router.port, f"nope.{DOMAIN}")).status == 404
        status, text = await status_get(router, "/metrics")
        assert status == 200
        assert 'router_requests_total{app="stat",status="200"} 3' in text
        assert 'router_requests_total{app="",status="404"} 1' in text
        assert 'router_request_duration_seconds_bucket{le="+Inf"} 4' in text
        assert "router_routes 1" in text
        assert "router_open_connections " in text
        status, text = await status_get(router, "/routes")
        assert status == 200
        assert f'"{host}": [{{"address": "127.0.0.1", "port": {backend.port}' in text
        # The status port is not reachable through host routing.
        assert (await get(router.port, f"127.0.0.1:{router.status_port}", "/health")).status \
            == 404


async def test_routes_need_the_box_credentials(etcd_endpoint: str) -> None:
    credentials = Credentials("admin", "s3cret-pass")
    async with running(etcd_endpoint, credentials) as router:
        assert (await status_get(router, "/routes"))[0] == 401
        assert (await status_get(router, "/routes", Credentials("admin", "wrong")))[0] == 401
        assert await status_get(router, "/routes", credentials) == (200, "{}")
        assert (await status_get(router, "/health"))[0] == 200
        assert (await status_get(router, "/metrics"))[0] == 200


async def test_health_is_503_while_draining(etcd_endpoint: str, etcd: Etcd) -> None:
    async with running(etcd_endpoint) as router, held_backend() as (port, release, seen):
        host = f"slow.{DOMAIN}"
        await put_app(etcd, "slow", [host])
        await put_instance(etcd, "slow", 0, port)
        await wait_for(lambda: endpoint_count(router, host) == 1, what="the route")
        in_flight = asyncio.create_task(get(router.port, host))
        await wait_for(lambda: len(seen) == 1, what="the request at the backend")
        stopping = asyncio.create_task(router.stop())
        try:
            await wait_for(lambda: router.proxy.shutting_down, what="draining")
            assert (await status_get(router, "/health"))[0] == 503
        finally:
            release.set()
            response = await in_flight
            await stopping
        assert response.status == 200
        assert response.body == b"held"


async def test_least_connections_avoids_a_busy_instance(etcd_endpoint: str, etcd: Etcd) -> None:
    async with running(etcd_endpoint, balancing="least-connections") as router, \
            held_backend() as (busy_port, release, seen), \
            contextlib.asynccontextmanager(run_backend)("idle") as idle:
        host = f"lc.{DOMAIN}"
        await put_app(etcd, "lc", [host])
        await put_instance(etcd, "lc", 0, busy_port)
        await put_instance(etcd, "lc", 1, idle.port)
        await wait_for(lambda: endpoint_count(router, host) == 2, what="two endpoints")
        # Requests go to either until one is held at the busy instance...
        held = []
        while not seen:
            held.append(asyncio.create_task(get(router.port, host)))
            await wait_for(lambda: len(seen) + idle.requests == len(held), what="an answer")
        # ...then every further one goes to the idle instance.
        before = idle.requests
        for _ in range(6):
            response = await get(router.port, host)
            assert response.json()["name"] == "idle"
        assert idle.requests == before + 6
        assert len(seen) == 1
        release.set()
        await asyncio.gather(*held)


async def test_a_dial_failure_cools_the_endpoint_down(
    etcd_endpoint: str, etcd: Etcd
) -> None:
    async with running(etcd_endpoint, cooldown_s=60) as router, \
            contextlib.asynccontextmanager(run_backend)("live") as live:
        host = f"cool.{DOMAIN}"
        await put_app(etcd, "cool", [host])
        await put_instance(etcd, "cool", 0, live.port)
        await put_instance(etcd, "cool", 1, _closed_port())
        await wait_for(lambda: endpoint_count(router, host) == 2, what="two endpoints")
        for _ in range(8):
            assert (await get(router.port, host)).status == 200
        # Round-robin would have sent 4 to the dead one; after its first failure it is skipped.
        assert router.proxy.metrics.backend_errors == 1
        assert router.proxy.metrics.retries == 1


async def test_when_every_endpoint_is_marked_the_marks_are_cleared(
    etcd_endpoint: str, etcd: Etcd
) -> None:
    async with running(etcd_endpoint, cooldown_s=60) as router:
        host = f"marks.{DOMAIN}"
        await put_app(etcd, "marks", [host])
        dead = _closed_port()
        await put_instance(etcd, "marks", 0, dead)
        await wait_for(lambda: endpoint_count(router, host) == 1, what="one endpoint")
        assert (await get(router.port, host)).status == 502
        # The only endpoint is marked; a second request still tries it (502 again, not 503).
        response = await get(router.port, host)
        assert response.status == 502
        assert response.headers["x-cf-routererror"] == "endpoint_failure"
        assert router.proxy.metrics.backend_errors == 2


def _closed_port() -> int:
    """A port nothing listens on: a dial to it is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
