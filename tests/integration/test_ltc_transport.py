"""ltc's plain API transport (http.client, keep-alive) and its event-stream wake-ups, against
real servers on loopback."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from lattice.auth import Credentials
from lattice.client.api_transport import HttpTransport
from lattice.client.app_events import AppEvents
from lattice.client.errors import BadTarget
from lattice.client.receptor import ReceptorClient
from lattice.client.target import Target, auth_headers

pytestmark = pytest.mark.integration


@dataclass
class Seen:
    hosts: list[str] = field(default_factory=list)
    peers: set[int] = field(default_factory=set)        # client ports: one per connection
    authorizations: list[str | None] = field(default_factory=list)
    bodies: list[object] = field(default_factory=list)


async def serve(app: web.Application) -> AsyncIterator[int]:
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


@pytest.fixture
async def api() -> AsyncIterator[tuple[int, Seen]]:
    seen = Seen()

    async def info(request: web.Request) -> web.Response:
        seen.hosts.append(request.host)
        assert request.transport is not None
        seen.peers.add(request.transport.get_extra_info("peername")[1])
        seen.authorizations.append(request.headers.get("Authorization"))
        if request.can_read_body:
            seen.bodies.append(await request.json())
        return web.json_response({"version": "test", "domain": "box.localhost"})

    app = web.Application()
    app.router.add_route("*", "/v1/info", info)
    async for port in serve(app):
        yield port, seen


async def test_calls_share_one_kept_alive_connection_with_the_real_host(
    api: tuple[int, Seen]
) -> None:
    port, seen = api
    credentials = Credentials("admin", "secret")
    target = Target("box.localhost", port, credentials)
    transport = HttpTransport(auth_headers(target))
    try:
        client = ReceptorClient(transport, target.receptor_url)
        for _ in range(3):
            assert (await client.info()).version == "test"
        await transport.request("POST", f"{target.receptor_url}/v1/info", {"a": 1})
    finally:
        transport.close()
    assert seen.hosts == [f"receptor.box.localhost:{port}"] * 4
    assert len(seen.peers) == 1
    assert seen.authorizations == [credentials.header()] * 4
    assert seen.bodies == [{"a": 1}]


async def test_a_connection_the_server_closed_meanwhile_is_replaced(
    api: tuple[int, Seen]
) -> None:
    port, seen = api
    transport = HttpTransport()
    url = f"http://receptor.box.localhost:{port}/v1/info"
    try:
        await transport.request("GET", url)
        # The idle connection breaks (as when a router drops it past its keep-alive timeout).
        idle = next(iter(transport._idle.values()))[0]
        assert idle.sock is not None
        idle.sock.shutdown(socket.SHUT_RDWR)
        reply = await transport.request("GET", url)
    finally:
        transport.close()
    assert reply.status == 200
    assert len(seen.peers) == 2


async def test_a_closed_port_is_a_bad_target_naming_the_api() -> None:
    async for port in serve(web.Application()):
        closed = port
    transport = HttpTransport()
    try:
        with pytest.raises(BadTarget, match=r"cannot reach http://receptor\.box\.localhost"):
            await ReceptorClient(transport, f"http://receptor.box.localhost:{closed}").info()
    finally:
        transport.close()


@dataclass
class EventSource:
    """An SSE endpoint whose events the test sends."""

    queue: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    authorizations: list[str | None] = field(default_factory=list)
    filters: list[list[str]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.authorizations.append(request.headers.get("Authorization"))
        self.filters.append(request.query.getall("process_guid", []))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        self.subscribed.set()
        while True:
            payload = await self.queue.get()
            if not payload:
                return response
            await response.write(payload)


def actual_event(app: str, state: str) -> bytes:
    return (b"event: actual_lrp_changed\ndata: {\"before\": {}, \"after\": {\"process_guid\": "
            + f'"{app}", "state": "{state}"'.encode() + b"}}\n\n")


@pytest.fixture
async def events() -> AsyncIterator[tuple[int, EventSource]]:
    source = EventSource()
    app = web.Application()
    app.router.add_get("/v1/events", source.handle)
    async for port in serve(app):
        yield port, source
        source.queue.put_nowait(b"")     # end the stream so the server's cleanup need not wait


async def test_events_about_the_app_wake_the_wait_and_others_do_not(
    events: tuple[int, EventSource]
) -> None:
    port, source = events
    watcher = AppEvents(f"http://receptor.box.localhost:{port}", "web", {"Authorization": "x"})
    try:
        await watcher.start(5)
        assert watcher.alive
        assert source.authorizations == ["x"]
        assert source.filters == [["web"]]    # the brain sends only this app's events
        # Should one about another app come all the same, it does not wake the wait.
        source.queue.put_nowait(actual_event("other", "RUNNING"))
        source.queue.put_nowait(actual_event("web", "RUNNING"))
        # Woken by the event about "web": no need to wait the whole minute.
        await asyncio.wait_for(watcher.next(60), 10)
        # Nothing else named "web" since: the next pause runs its course.
        source.queue.put_nowait(actual_event("webs", "CLAIMED"))
        started = asyncio.get_running_loop().time()
        await watcher.next(0.2)
        assert asyncio.get_running_loop().time() - started >= 0.2
    finally:
        watcher.close()


async def test_without_an_event_stream_the_wait_is_told_to_poll() -> None:
    async for port in serve(web.Application()):     # answers 404 to /v1/events
        watcher = AppEvents(f"http://receptor.box.localhost:{port}", "web")
        try:
            await watcher.start(5)
            assert not watcher.alive
        finally:
            watcher.close()
