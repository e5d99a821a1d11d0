"""`GET /v1/events` on a real brain and etcd: DesiredLRP, ActualLRP and Task changes arrive as
server-sent events, a `process_guid` filter keeps one app's, a bad filter is a 400, a subscriber
whose peer has gone is dropped within a second or so (not at the next heartbeat), and an open
stream does not hold up the brain's shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from lattice.brain.config import BrainConfig
from lattice.brain.events import HEARTBEAT_S, EventHub, register_event_routes
from lattice.brain.main import serve
from lattice.etcd_server import free_port
from lattice.store import Etcd, keys
from tests.support_logagg import wait_for

pytestmark = pytest.mark.integration


@contextlib.asynccontextmanager
async def running_brain(etcd_endpoint: str) -> AsyncIterator[str]:
    """A brain on a free loopback port, ready; its base URL. Stopped on exit."""
    port = free_port()
    ready = asyncio.Event()
    server = asyncio.create_task(serve(BrainConfig(etcd_endpoints=etcd_endpoint, port=port),
                                       ready=ready))
    try:
        await asyncio.wait_for(ready.wait(), 30)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server


async def read_events(response: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, Any]]:
    event_type = ""
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            event_type = line[len("event: "):]
        elif line.startswith("data: "):
            yield event_type, json.loads(line[len("data: "):])


async def collect(events: AsyncIterator[tuple[str, Any]], *wanted: str) -> dict[str, Any]:
    """The first event of each wanted type. Each prefix has its own watch, so events of
    different kinds may arrive in any order."""
    found: dict[str, Any] = {}
    async for event_type, data in events:
        if event_type in wanted:
            found.setdefault(event_type, data)
        if len(found) == len(wanted):
            return found
    raise AssertionError(f"the stream ended with only {sorted(found)} of {wanted}")


async def test_events_for_desired_actual_and_tasks(
    etcd_endpoint: str, etcd: Etcd, demo_image: str
) -> None:
    port = free_port()
    ready = asyncio.Event()
    server = asyncio.create_task(serve(BrainConfig(etcd_endpoints=etcd_endpoint, port=port),
                                       ready=ready))
    base = f"http://127.0.0.1:{port}"
    try:
        await asyncio.wait_for(ready.wait(), 30)
        async with aiohttp.ClientSession() as session, session.get(f"{base}/v1/events") as stream:
            assert stream.status == 200
            assert stream.headers["Content-Type"].startswith("text/event-stream")
            events = read_events(stream)
            async with session.post(f"{base}/v1/desired_lrps", json={
                "process_guid": "watched", "image": demo_image, "instances": 1,
            }) as created:
                assert created.status == 201
            # No cell: the auction records its placement error, a change of the ActualLRP.
            found = await asyncio.wait_for(collect(
                events, "desired_lrp_created", "actual_lrp_created", "actual_lrp_changed"), 30)
            assert found["desired_lrp_created"]["desired_lrp"]["process_guid"] == "watched"
            assert found["actual_lrp_created"]["actual_lrp"]["index"] == 0
            assert found["actual_lrp_changed"]["after"]["placement_error"] != ""
            await etcd.put(keys.TASKS + "t1", json.dumps({"task_guid": "t1"}).encode())
            found = await asyncio.wait_for(collect(events, "task_created"), 30)
            assert found["task_created"] == {"task": {"task_guid": "t1"}}
            async with session.delete(f"{base}/v1/desired_lrps/watched") as removed:
                assert removed.status == 204
            found = await asyncio.wait_for(collect(events, "desired_lrp_removed"), 30)
            assert found["desired_lrp_removed"]["desired_lrp"]["process_guid"] == "watched"
            # Stopping the brain with the stream still open: it ends the stream, not waits.
            server.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(server, 30)
    finally:
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server


def guid_of(data: dict[str, Any]) -> str | None:
    record = data.get("after") or next(iter(data.values()))
    guid = record.get("process_guid")
    return guid if isinstance(guid, str) else None


async def test_a_filtered_stream_carries_only_its_apps_events(
    etcd_endpoint: str, etcd: Etcd, demo_image: str
) -> None:
    filter_url = "/v1/events?process_guid=absent,watched&process_guid=other-absent"
    async with running_brain(etcd_endpoint) as base, aiohttp.ClientSession() as session, \
            session.get(f"{base}/v1/events") as everything, \
            session.get(base + filter_url) as filtered:
        assert filtered.status == 200
        # Another app and a task first: once the unfiltered stream has their events, the hub
        # has offered them to every subscriber, ahead of anything about `watched`.
        async with session.post(f"{base}/v1/desired_lrps", json={
            "process_guid": "other", "image": demo_image, "instances": 1,
        }) as created:
            assert created.status == 201
        await etcd.put(keys.TASKS + "t1", json.dumps({"task_guid": "t1"}).encode())
        await asyncio.wait_for(collect(read_events(everything), "desired_lrp_created",
                                       "actual_lrp_created", "task_created"), 30)
        async with session.post(f"{base}/v1/desired_lrps", json={
            "process_guid": "watched", "image": demo_image, "instances": 1,
        }) as created:
            assert created.status == 201
        seen: list[tuple[str, str | None]] = []

        async def until_watched_created() -> None:
            async for event_type, data in read_events(filtered):
                seen.append((event_type, guid_of(data)))
                if {"desired_lrp_created", "actual_lrp_created"} <= {t for t, _ in seen}:
                    return

        await asyncio.wait_for(until_watched_created(), 30)
        assert all(guid == "watched" for _, guid in seen), seen


async def test_a_bad_filter_is_a_400_naming_the_parameter(etcd_endpoint: str) -> None:
    bad = {"process_guid=": "process_guid", "process_guid=web,": "process_guid",
           "process_guid=a%20b": "process_guid", "process_guid=" + "x" * 64: "process_guid",
           "proces_guid=web": "proces_guid"}
    async with running_brain(etcd_endpoint) as base, aiohttp.ClientSession() as session:
        for query, named in bad.items():
            async with session.get(f"{base}/v1/events?{query}") as refused:
                assert refused.status == 400, query
                error = (await refused.json())["error"]
                assert error["type"] == "InvalidRequest"
                assert named in error["message"], (query, error)


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
async def test_a_subscriber_whose_peer_is_gone_is_dropped_at_once(reset: bool) -> None:
    hub = EventHub()
    app = web.Application()
    register_event_routes(app, hub)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert (await asyncio.wait_for(reader.readline(), 10)).startswith(b"HTTP/1.1 200")
        await wait_for(lambda: hub.subscribers == 1, 10, "the subscription")
        if reset:       # RST rather than FIN
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00" * 2)
        writer.close()
        # Well inside the heartbeat, when a write would have found the peer gone.
        start = time.monotonic()
        await wait_for(lambda: hub.subscribers == 0, HEARTBEAT_S / 3,
                       "the subscriber to be dropped")
        took = time.monotonic() - start
        assert took < HEARTBEAT_S / 3
    finally:
        await runner.cleanup()
