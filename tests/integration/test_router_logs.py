"""Every request through the router reaches the app's log stream as an RTR line."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
import structlog
from structlog.testing import capture_logs

from lattice.store import Etcd
from logagg import recent
from router import RouterConfig, RouterServer
from tests.support_logagg import Aggregators
from tests.support_router import get, put_app, put_instance, run_backend, wait_for

DOMAIN = "lattice.localhost"


@pytest.fixture
async def aggregators(etcd: Etcd, etcd_endpoint: str) -> AsyncIterator[Aggregators]:
    running = Aggregators(etcd, etcd_endpoint)
    yield running
    await running.stop_all()


async def test_requests_become_rtr_lines_in_the_apps_logs(
    etcd: Etcd, etcd_endpoint: str, aggregators: Aggregators
) -> None:
    aggregator = await aggregators.start(recent_lines=100)
    router = RouterServer(RouterConfig(etcd_endpoints=etcd_endpoint, port=0))
    await router.start()
    try:
        async with contextlib.asynccontextmanager(run_backend)("b0") as backend, \
                aiohttp.ClientSession() as session:
            host = f"logged.{DOMAIN}"
            await put_app(etcd, "logged", [host])
            await put_instance(etcd, "logged", 0, backend.port)
            await wait_for(lambda: getattr(router.table.lookup(host), "endpoints", ()) != (),
                           what="the route")
            for path in ("/one", "/two?x=1", "/three"):
                assert (await get(router.port, host, path)).status == 200
            assert (await get(router.port, f"nobody.{DOMAIN}")).status == 404

            lines: list[str] = []

            async def three_lines() -> bool:
                lines[:] = [e.message for e in await recent(session, aggregator.base_url,
                                                            "logged")
                            if e.source_type == "RTR"]
                return len(lines) >= 3

            await wait_for(three_lines, within=30, what="three RTR lines")
            assert len(lines) == 3
            assert lines[1].startswith(f'{host} - "GET /two?x=1" 200 response_time:')
            assert all("app_index:0" in line for line in lines)
    finally:
        await router.stop()


async def test_requests_are_logged_at_debug_level(etcd_endpoint: str, etcd: Etcd) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        router = RouterServer(RouterConfig(etcd_endpoints=etcd_endpoint, port=0))
        await router.start()
        try:
            with capture_logs() as events:
                assert (await get(router.port, f"nobody.{DOMAIN}")).status == 404
            done = [e for e in events if e["event"] == "request-done"]
            assert done == [{"event": "request-done", "log_level": "debug",
                             "host": f"nobody.{DOMAIN}", "status": 404, "app": "",
                             "index": -1, "duration_s": done[0]["duration_s"]}]
        finally:
            await router.stop()
    finally:
        structlog.reset_defaults()
