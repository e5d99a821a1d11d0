"""The aggregator's endpoints over real sockets: slow subscribers, bad input, clean endings."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohappyeyeballs import AddrInfoType
from aiohttp import web
from structlog.testing import capture_logs

from lattice.store import Etcd
from logagg import Envelope, LogStreamError, recent, tail
from logagg.frames import encode_frame
from tests.support_logagg import (
    DEADLINE_S,
    Aggregators,
    RunningAggregator,
    TailCollector,
    wait_for,
    wait_until,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def aggregators(etcd: Etcd, etcd_endpoint: str) -> AsyncIterator[Aggregators]:
    running = Aggregators(etcd, etcd_endpoint)
    yield running
    await running.stop_all()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def small_receive_buffer(addr_info: AddrInfoType) -> socket.socket:
    family, kind, proto, _, _ = addr_info
    sock = socket.socket(family, kind, proto)
    # A tiny window (set before connecting) makes a subscriber that stops reading stall fast.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return sock


@pytest.fixture
async def slow_session() -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(socket_factory=small_receive_buffer)
    async with aiohttp.ClientSession(connector=connector) as client:
        yield client


async def open_ingest(session: aiohttp.ClientSession,
                      aggregator: RunningAggregator) -> aiohttp.ClientWebSocketResponse:
    return await session.ws_connect(f"{aggregator.base_url}/ingest")


async def recent_messages(session: aiohttp.ClientSession, aggregator: RunningAggregator,
                          app_id: str) -> list[str]:
    return [e.message for e in await recent(session, aggregator.base_url, app_id)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_stalled_subscriber_does_not_hold_back_a_fast_one(
        aggregators: Aggregators, session: aiohttp.ClientSession,
        slow_session: aiohttp.ClientSession) -> None:
    aggregator = await aggregators.start(subscriber_queue=50)
    stalled = await slow_session.ws_connect(f"{aggregator.base_url}/apps/web/stream")
    fast = TailCollector(session, aggregator.base_url, "web")
    ingest = await open_ingest(session, aggregator)
    try:
        async def send(envelope: Envelope) -> None:
            await ingest.send_str(encode_frame([envelope]))

        probes = await fast.wait_until_live(send, "web")
        # 1500 lines of 8 KB (12 MB): far more than the stalled one's socket buffers and queue.
        total = 1500
        sent = [Envelope.now("web", "APP", "0", f"{n} " + "x" * 8000) for n in range(total)]
        for envelope in sent:
            await send(envelope)
        await wait_for(lambda: len(fast.without_probes()) == total, what="every line, fast")
        assert fast.without_probes() == sent

        # The stalled one reads at last: each line either arrived or is counted in a notice.
        delivered, dropped, notices = 0, 0, 0
        while delivered + dropped < total + probes:
            msg = await stalled.receive(timeout=DEADLINE_S)
            assert msg.type is aiohttp.WSMsgType.TEXT
            envelope = Envelope.from_dict(json.loads(msg.data))
            if envelope.source_type == "LGR":
                notices += 1
                dropped += int(envelope.message.removesuffix(" messages dropped"))
            else:
                delivered += 1
        assert notices >= 1
        assert dropped > 0
        assert delivered + dropped == total + probes
    finally:
        await fast.close()
        await ingest.close()
        await stalled.close()


async def test_shutdown_cuts_off_a_stalled_subscriber(
        aggregators: Aggregators, session: aiohttp.ClientSession,
        slow_session: aiohttp.ClientSession) -> None:
    aggregator = await aggregators.start(subscriber_queue=5)
    stalled = await slow_session.ws_connect(f"{aggregator.base_url}/apps/web/stream")
    ingest = await open_ingest(session, aggregator)
    try:
        big = "x" * 64_000
        # Enough to fill every buffer between the server and the stalled reader.
        for n in range(200):
            await ingest.send_str(encode_frame([Envelope.now("web", "APP", "0", f"{n}{big}")]))
        with capture_logs() as logs:
            async with asyncio.timeout(DEADLINE_S):
                await aggregators.stop(aggregator)   # must not wait for the stalled reader
        assert "websocket-aborted" in [entry["event"] for entry in logs]
        async with asyncio.timeout(DEADLINE_S):
            msg = await stalled.receive()
            while msg.type is aiohttp.WSMsgType.TEXT:    # what got through before the cut
                msg = await stalled.receive()
        # Cut off, not closed politely: the close frame queued behind the unread lines never
        # came, so the server dropped those lines instead of keeping them for a reader that
        # might never read.
        assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR), msg
    finally:
        await ingest.close()
        await stalled.close()


async def test_bad_ingest_frames_are_skipped_and_logged(
        aggregators: Aggregators, session: aiohttp.ClientSession) -> None:
    aggregator = await aggregators.start()
    ingest = await open_ingest(session, aggregator)
    good = Envelope.now("web", "APP", "0", "kept")
    try:
        with capture_logs() as logs:
            await ingest.send_str("not json at all")
            await ingest.send_str('{"an": "object, not an array"}')
            await ingest.send_bytes(b"\x00\x01binary")
            await ingest.send_str(json.dumps([{"app_id": "bad app id", "message": 1},
                                              good.to_dict(), 42]))
            await ingest.send_str(encode_frame([Envelope.now("web", "APP", "0", "after")]))

            async def both_arrived() -> bool:
                return await recent_messages(session, aggregator, "web") == ["kept", "after"]

            await wait_until(both_arrived, what="the good lines")
        assert not ingest.closed            # bad input costs the producer nothing but those lines
        rejected = [entry for entry in logs if entry["event"] == "ingest-frame-rejected"]
        assert [entry["rejected"] for entry in rejected] == [1, 1, 1, 2]
        assert "frame is not JSON" in rejected[0]["problems"][0]
        assert rejected[3]["problems"][0].startswith("item 0: app_id: must match")
        async with session.get(f"{aggregator.base_url}/health") as response:
            assert response.status == 200
            assert await response.json() == {"status": "ok"}
    finally:
        await ingest.close()


async def test_a_bad_app_id_is_refused_clearly(
        aggregators: Aggregators, session: aiohttp.ClientSession) -> None:
    aggregator = await aggregators.start()
    with pytest.raises(LogStreamError, match="HTTP 400"):
        async for _ in tail(session, aggregator.base_url, "bad app"):
            pass
    with pytest.raises(LogStreamError, match=r"HTTP 400: app_id must match"):
        await recent(session, aggregator.base_url, "bad app")
    async with session.get(f"{aggregator.base_url}/apps/bad%20app/recentlogs") as response:
        assert response.status == 400
        assert (await response.json())["error"]["type"] == "InvalidRequest"
    async with session.get(f"{aggregator.base_url}/health") as response:
        assert response.status == 200


async def test_tail_ends_when_the_aggregator_shuts_down(
        aggregators: Aggregators, session: aiohttp.ClientSession) -> None:
    aggregator = await aggregators.start()
    ingest = await open_ingest(session, aggregator)
    live = TailCollector(session, aggregator.base_url, "web")

    async def send(envelope: Envelope) -> None:
        await ingest.send_str(encode_frame([envelope]))

    try:
        await live.wait_until_live(send, "web")
        await aggregators.stop(aggregator)
        await asyncio.wait_for(live.task, DEADLINE_S)    # ends without raising
        assert live.ended
    finally:
        await ingest.close()
        await live.close()


async def test_unreachable_aggregator_is_a_clear_error(session: aiohttp.ClientSession) -> None:
    base_url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(LogStreamError, match="cannot connect to the log aggregator"):
        async for _ in tail(session, base_url, "web"):
            pass
    with pytest.raises(LogStreamError, match="cannot reach the log aggregator"):
        await recent(session, base_url, "web")


async def test_client_sends_the_host_header_and_checks_answers(
        session: aiohttp.ClientSession) -> None:
    """A stand-in for the router: a real server that answers by the Host header it gets."""
    hosts: list[str] = []

    async def recentlogs(request: web.Request) -> web.Response:
        hosts.append(request.host)
        if request.host == "doppler.lattice.localhost":
            return web.json_response([Envelope.now("web", "APP", "0", "routed").to_dict()])
        if request.host == "garbage.localhost":
            return web.json_response({"not": "a list"})
        return web.json_response({"error": {"type": "unknown_route", "message": "no route"}},
                                 status=404)

    async def stream(request: web.Request) -> web.WebSocketResponse:
        hosts.append(request.host)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(json.dumps(Envelope.now("web", "APP", "0", "streamed").to_dict()))
        await ws.close()
        return ws

    app = web.Application()
    app.router.add_get("/apps/{app_id}/recentlogs", recentlogs)
    app.router.add_get("/apps/{app_id}/stream", stream)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        routed = await recent(session, base_url, "web", host="doppler.lattice.localhost")
        assert [e.message for e in routed] == ["routed"]
        streamed = [e.message async for e in tail(session, base_url, "web",
                                                  host="doppler.lattice.localhost")]
        assert streamed == ["streamed"]
        with pytest.raises(LogStreamError, match="HTTP 404: no route"):
            await recent(session, base_url, "web", host="elsewhere.localhost")
        with pytest.raises(LogStreamError, match="expected a JSON array"):
            await recent(session, base_url, "web", host="garbage.localhost")
        assert hosts[:2] == ["doppler.lattice.localhost", "doppler.lattice.localhost"]
    finally:
        await runner.cleanup()
