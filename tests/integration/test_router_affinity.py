"""Sticky sessions and instance targeting, through a real router to real backends."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator

import pytest

from lattice.models import ActualState
from lattice.store import Etcd
from router import RouterConfig, RouterServer
from tests.support_router import Backend, get, put_app, put_instance, run_backend, wait_for

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


def endpoint_count(router: RouterServer, host: str) -> int:
    pool = router.table.lookup(host)
    return 0 if pool is None else len(pool.endpoints)


async def app_on(etcd: Etcd, router: RouterServer, guid: str, backends: list[Backend]) -> str:
    host = f"{guid}.{DOMAIN}"
    await put_app(etcd, guid, [host])
    for index, backend in enumerate(backends):
        await put_instance(etcd, guid, index, backend.port)
    await wait_for(lambda: endpoint_count(router, host) == len(backends),
                   what=f"{len(backends)} endpoints for {host}")
    return host


async def test_a_session_sticks_to_its_instance_while_it_lives(
    etcd: Etcd, router: RouterServer, backends: list[Backend]
) -> None:
    host = await app_on(etcd, router, "sticky", backends)
    first = await get(router.port, host, "/session")
    assert first.status == 200
    # The raw client keeps the last Set-Cookie; the router's comes after the backend's.
    vcap = first.headers["set-cookie"]
    assert vcap.startswith("__VCAP_ID__=sticky-instance-")
    assert "Max-Age=600" in vcap
    assert "HttpOnly" in vcap
    guid = vcap.split(";")[0].split("=", 1)[1]
    owner = first.json()["name"]
    cookies = {"Cookie": f"JSESSIONID={owner}-session; __VCAP_ID__={guid}"}
    names = {(await get(router.port, host, "/", headers=cookies)).json()["name"]
             for _ in range(9)}
    assert names == {owner}
    # Only __VCAP_ID__, without a session: ordinary balancing.
    plain = {"Cookie": f"__VCAP_ID__={guid}"}
    names = {(await get(router.port, host, "/", headers=plain)).json()["name"]
             for _ in range(9)}
    assert names == {b.name for b in backends}
    # The instance stops: its sessions go elsewhere instead of failing.
    index = int(guid.rsplit("-", 1)[1])
    await put_instance(etcd, "sticky", index, backends[index].port, state=ActualState.CRASHED)
    await wait_for(lambda: endpoint_count(router, host) == 2,
                   what="the crashed instance to leave the pool")
    moved = await get(router.port, host, "/", headers=cookies)
    assert moved.status == 200
    assert moved.json()["name"] != owner


async def test_x_cf_app_instance_reaches_that_instance_only(
    etcd: Etcd, router: RouterServer, backends: list[Backend]
) -> None:
    host = await app_on(etcd, router, "target", backends)
    for index, backend in enumerate(backends):
        for _ in range(3):
            response = await get(router.port, host, "/",
                                 headers={"X-Cf-App-Instance": f"target:{index}"})
            assert response.status == 200
            assert response.json()["name"] == backend.name


@pytest.mark.parametrize("value", ["target", "target:", "target:x", ":1", "target:1:2",
                                   "target:-1", "tar get:1"])
async def test_a_malformed_x_cf_app_instance_is_400(
    etcd: Etcd, router: RouterServer, backends: list[Backend], value: str
) -> None:
    host = await app_on(etcd, router, "target", backends[:1])
    response = await get(router.port, host, "/", headers={"X-Cf-App-Instance": value})
    assert response.status == 400
    assert response.headers["x-cf-routererror"] == "invalid_cf_app_instance_header"
    assert response.body.startswith(b"400 Bad Request: Invalid X-CF-App-Instance Header")
    assert backends[0].requests == 0


@pytest.mark.parametrize("value", ["target:7", "other-app:0"])
async def test_an_instance_the_route_does_not_have_is_400_unknown_route(
    etcd: Etcd, router: RouterServer, backends: list[Backend], value: str
) -> None:
    host = await app_on(etcd, router, "target", backends[:2])
    response = await get(router.port, host, "/", headers={"X-Cf-App-Instance": value})
    assert response.status == 400
    assert response.headers["x-cf-routererror"] == "unknown_route"
    assert response.body.startswith(b"400 Bad Request: ")
    assert sum(b.requests for b in backends) == 0


async def test_a_targeted_instance_whose_dial_fails_is_not_replaced(
    etcd: Etcd, router: RouterServer, backends: list[Backend]
) -> None:
    host = await app_on(etcd, router, "target", backends[:1])
    await put_instance(etcd, "target", 1, _closed_port())
    await wait_for(lambda: endpoint_count(router, host) == 2, what="two endpoints")
    response = await get(router.port, host, "/", headers={"X-Cf-App-Instance": "target:1"})
    assert response.status == 502
    assert response.headers["x-cf-routererror"] == "endpoint_failure"
    assert backends[0].requests == 0


def _closed_port() -> int:
    """A port nothing listens on: a dial to it is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_path_routes_through_the_router(
    etcd: Etcd, router: RouterServer, backends: list[Backend]
) -> None:
    await put_app(etcd, "site", [f"paths.{DOMAIN}"])
    await put_app(etcd, "api", [f"paths.{DOMAIN}/api"])
    await put_instance(etcd, "site", 0, backends[0].port)
    await put_instance(etcd, "api", 0, backends[1].port)
    await wait_for(lambda: router.table.lookup(f"paths.{DOMAIN}", b"/api") is not None
                   and router.table.lookup(f"paths.{DOMAIN}", b"/api") is not
                   router.table.lookup(f"paths.{DOMAIN}", b"/"), what="both routes")
    await wait_for(lambda: endpoint_count(router, f"paths.{DOMAIN}") == 1, what="site endpoint")
    site = await get(router.port, f"paths.{DOMAIN}", "/apis")
    api = await get(router.port, f"paths.{DOMAIN}", "/api/users?id=1")
    assert site.json()["name"] == "b0"
    assert api.json()["name"] == "b1"
    assert api.json()["path"] == "/api/users?id=1"      # the path is passed on unchanged
