"""Syslog drains: lines from a real LogPublisher, through a real aggregator that reads the app's
drains from a real etcd, to a real TCP listener on 127.0.0.1 as RFC 5424 (octet counted)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator, MutableMapping
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from lattice.models import parse_desired_lrp
from lattice.store import Delete, Etcd, keys
from logagg import Envelope, LogPublisher
from tests.support_drains import SyslogListener
from tests.support_logagg import DEADLINE_S, Aggregators, TailCollector, wait_for

pytestmark = pytest.mark.integration

Events = list[MutableMapping[str, Any]]


@pytest.fixture
async def aggregators(etcd: Etcd, etcd_endpoint: str) -> AsyncIterator[Aggregators]:
    running = Aggregators(etcd, etcd_endpoint)
    yield running
    await running.stop_all()


@pytest.fixture
async def publisher(etcd: Etcd) -> AsyncIterator[LogPublisher]:
    producer = LogPublisher(etcd)
    task = asyncio.create_task(producer.run())
    yield producer
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pytest.fixture
async def listener() -> AsyncIterator[SyslogListener]:
    server = SyslogListener()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def events() -> Iterator[Events]:
    with capture_logs() as captured:
        yield captured


async def set_drains(etcd: Etcd, app: str, drains: list[str]) -> None:
    """Write the app's desired scheduling info as the brain's API would."""
    lrp = parse_desired_lrp({"process_guid": app, "image": "img", "syslog_drains": drains},
                            epoch="e")
    await etcd.put(keys.scheduling(app), json.dumps(lrp.scheduling.to_dict()).encode())


def named(events: Events, event: str, app: str) -> Events:
    return [e for e in events if e["event"] == event and e.get("app_id") == app]


async def test_lines_arrive_as_rfc5424_without_credentials_in_any_log(
        etcd: Etcd, aggregators: Aggregators, publisher: LogPublisher,
        listener: SyslogListener, events: Events) -> None:
    url = f"tcp://drainuser:s3cret-token@127.0.0.1:{listener.port}"
    await set_drains(etcd, "web", [url])
    await aggregators.start()
    await wait_for(lambda: listener.open_connections == 1, what="the drain to connect")
    for n in range(200):
        publisher.emit(Envelope.now("web", "APP", str(n % 2), f"line {n}",
                                    "ERR" if n % 10 == 0 else "OUT"))
    publisher.emit(Envelope.now("other", "APP", "0", "not for this drain"))
    await wait_for(lambda: len(listener.messages) >= 200, what="200 lines at the drain")
    assert listener.lines() == [f"line {n}" for n in range(200)]
    first, second = listener.messages[0], listener.messages[1]
    assert (first.pri, first.hostname, first.app_name, first.procid) == (11, "web", "web",
                                                                          "[APP/0]")
    assert (second.pri, second.procid) == (14, "[APP/1]")
    assert first.timestamp.endswith("Z")
    assert "s3cret-token" not in repr(events)
    assert "drainuser" not in repr(events)
    assert named(events, "drain-connected", "web")[0]["drain"] == (
        f"tcp://***@127.0.0.1:{listener.port}")


async def test_listener_away_and_back_reconnects_and_delivers_what_waited(
        etcd: Etcd, aggregators: Aggregators, publisher: LogPublisher,
        listener: SyslogListener, events: Events) -> None:
    await set_drains(etcd, "api", [listener.url])
    await aggregators.start()
    publisher.emit(Envelope.now("api", "APP", "0", "before"))
    await wait_for(lambda: listener.lines() == ["before"], what="the first line")

    await listener.stop()
    await wait_for(lambda: bool(named(events, "drain-disconnected", "api")),
                   what="the writer to notice the drain went away")
    # While nobody listens the lines wait in the writer's queue; the writer keeps retrying.
    for n in range(50):
        publisher.emit(Envelope.now("api", "APP", "0", f"during {n}"))
    await wait_for(lambda: bool(named(events, "drain-connect-failed", "api")),
                   what="a failed reconnect")
    await listener.start()
    await wait_for(lambda: len(named(events, "drain-connected", "api")) == 2,
                   what="the reconnect")
    publisher.emit(Envelope.now("api", "APP", "0", "after"))
    wanted = ["before", *(f"during {n}" for n in range(50)), "after"]
    await wait_for(lambda: listener.lines() == wanted, what="every line, in order")
    assert listener.connections == 2
    # Backoff, not a busy loop: few attempts for a short outage.
    assert len(named(events, "drain-connect-failed", "api")) == 1


async def test_removing_the_drain_or_the_app_stops_the_writer(
        etcd: Etcd, aggregators: Aggregators, publisher: LogPublisher,
        events: Events) -> None:
    first, second = SyslogListener(), SyslogListener()
    await first.start()
    await second.start()
    try:
        await set_drains(etcd, "jobs", [first.url, second.url])
        await aggregators.start()
        await wait_for(lambda: first.open_connections == second.open_connections == 1,
                       what="both drains connected")
        publisher.emit(Envelope.now("jobs", "APP", "0", "to both"))
        await wait_for(lambda: first.lines() == second.lines() == ["to both"], what="both")

        await set_drains(etcd, "jobs", [second.url])        # ltc update --syslog-drain
        await wait_for(lambda: first.open_connections == 0, what="the first drain closed")
        publisher.emit(Envelope.now("jobs", "APP", "0", "second only"))
        await wait_for(lambda: second.lines() == ["to both", "second only"], what="second")

        await etcd.txn([], [Delete(keys.scheduling("jobs"))])   # ltc remove
        await wait_for(lambda: second.open_connections == 0, what="the second drain closed")
        publisher.emit(Envelope.now("jobs", "APP", "0", "after removal"))
        # Acknowledged means ingested: had a writer been left, it would have the line now.
        assert await publisher.flush(DEADLINE_S)
        assert first.connections == second.connections == 1
        assert "after removal" not in first.lines() + second.lines()
        assert len(named(events, "drain-removed", "jobs")) == 2
    finally:
        await first.stop()
        await second.stop()


async def test_a_stalled_drain_holds_up_no_subscriber_and_drops_are_counted(
        etcd: Etcd, aggregators: Aggregators, publisher: LogPublisher,
        events: Events) -> None:
    stalled = SyslogListener(read=False)
    await stalled.start()
    try:
        await set_drains(etcd, "busy", [stalled.url])
        # A subscriber queue that holds the whole burst: any loss would be the drain's doing.
        aggregator = await aggregators.start(drain_queue=100, subscriber_queue=50_000)
        await wait_for(lambda: stalled.open_connections == 1, what="the drain connected")
        async with aiohttp.ClientSession() as session:
            tail = TailCollector(session, aggregator.base_url, "busy")
            try:
                await tail.wait_until_live(_emitter(publisher), "busy")
                # Far more than the queue and the socket buffers hold: the drain stalls.
                count = 5_000
                text = "x" * 3000
                for n in range(count):
                    publisher.emit(Envelope.now("busy", "APP", "0", f"{n} {text}"))
                await wait_for(
                    lambda: len(tail.without_probes()) >= count,
                    what="the tail to get every line despite the stalled drain")
                assert [e.message for e in tail.without_probes()] == [
                    f"{n} {text}" for n in range(count)]
            finally:
                await tail.close()
        assert named(events, "drain-queue-full", "busy")
    finally:
        await stalled.stop()


def _emitter(publisher: LogPublisher) -> Any:
    async def emit(envelope: Envelope) -> None:
        publisher.emit(envelope)
    return emit
