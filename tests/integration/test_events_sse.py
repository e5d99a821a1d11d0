"""`GET /v1/events` on a real brain and etcd: DesiredLRP, ActualLRP and Task changes arrive as
server-sent events, and an open stream does not hold up the brain's shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from lattice.brain.config import BrainConfig
from lattice.brain.main import serve
from lattice.etcd_server import free_port
from lattice.store import Etcd, keys

pytestmark = pytest.mark.integration


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
