"""Lines from a LogPublisher to tail() and recent(), through a real aggregator found in etcd."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import pytest

from lattice.store import Etcd
from logagg import Envelope, LogPublisher, recent
from logagg.envelope import MAX_MESSAGE_BYTES
from logagg.publisher import MAX_MESSAGE_CHARS
from tests.support_logagg import (
    DEADLINE_S,
    Aggregators,
    TailCollector,
    doppler_records,
    wait_for,
    wait_until,
)

pytestmark = pytest.mark.integration


class Publishers:
    """Runs LogPublishers; cancels every one it started."""

    def __init__(self, etcd: Etcd) -> None:
        self._etcd = etcd
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, **options: int) -> LogPublisher:
        publisher = LogPublisher(self._etcd, **options)
        self._tasks.append(asyncio.create_task(publisher.run()))
        return publisher

    async def stop_all(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@pytest.fixture
async def aggregators(etcd: Etcd, etcd_endpoint: str) -> AsyncIterator[Aggregators]:
    running = Aggregators(etcd, etcd_endpoint)
    yield running
    await running.stop_all()


@pytest.fixture
async def publishers(etcd: Etcd) -> AsyncIterator[Publishers]:
    running = Publishers(etcd)
    yield running
    await running.stop_all()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def app_line(n: int) -> Envelope:
    # Varied metadata, to show none of it is lost on the way.
    return Envelope.now("web", "APP", str(n % 3), f"line {n}", "ERR" if n % 2 else "OUT")


async def emitter(publisher: LogPublisher, envelope: Envelope) -> None:
    publisher.emit(envelope)


async def test_published_lines_reach_tail_and_recent(
        aggregators: Aggregators, publishers: Publishers,
        session: aiohttp.ClientSession) -> None:
    aggregator = await aggregators.start(recent_lines=1000)
    assert aggregator.record.hostnames == ("doppler.lattice.localhost",)
    publisher = publishers.start()
    live = TailCollector(session, aggregator.base_url, "web")
    try:
        await live.wait_until_live(lambda e: emitter(publisher, e), "web")
        sent = [app_line(n) for n in range(50)]
        for envelope in sent:
            publisher.emit(envelope)
        publisher.emit(Envelope.now("other-app", "APP", "0", "not for web"))
        assert await publisher.flush(DEADLINE_S)
        assert publisher.connected_to == aggregator.record.address

        await wait_for(lambda: len(live.without_probes()) >= len(sent), what="50 live lines")
        assert live.without_probes() == sent
        recent_lines = await recent(session, aggregator.base_url, "web")
        assert [e for e in recent_lines if e.message.startswith("line")] == sent
        assert [e.message for e in await recent(session, aggregator.base_url, "other-app")] == [
            "not for web"]
    finally:
        await live.close()


async def test_publisher_follows_a_restarted_aggregator(
        etcd: Etcd, aggregators: Aggregators, publishers: Publishers,
        session: aiohttp.ClientSession) -> None:
    first = await aggregators.start()
    publisher = publishers.start()
    await wait_for(lambda: publisher.connected_to == first.record.address,
                   what="the publisher to connect to the first aggregator")

    await aggregators.stop(first)
    assert first.key not in await doppler_records(etcd)     # lease released, not left to expire
    await wait_for(lambda: publisher.connected_to is None, what="the publisher to notice")
    while_down = [app_line(n) for n in range(20)]
    for envelope in while_down:
        publisher.emit(envelope)
    assert not await publisher.flush(0.1)     # nowhere to send them: they wait

    second = await aggregators.start()
    assert second.record.address != first.record.address
    assert await publisher.flush(DEADLINE_S)
    assert publisher.connected_to == second.record.address
    assert await recent(session, second.base_url, "web") == while_down


async def test_full_backlog_drops_oldest_and_says_so(
        aggregators: Aggregators, publishers: Publishers,
        session: aiohttp.ClientSession) -> None:
    publisher = publishers.start(backlog=5)
    lines = [app_line(n) for n in range(12)]
    for envelope in lines:                      # no aggregator yet: they pile up
        publisher.emit(envelope)
    publisher.emit(Envelope.now("worker", "APP", "0", "worker line"))
    assert publisher.dropped_total == 8         # 13 lines into room for 5

    aggregator = await aggregators.start()
    assert await publisher.flush(DEADLINE_S)
    received = await recent(session, aggregator.base_url, "web")
    notice, *rest = received
    assert (notice.source_type, notice.message) == ("LGR", "8 messages dropped")
    assert rest == lines[8:]
    assert [e.message for e in await recent(session, aggregator.base_url, "worker")] == [
        "worker line"]


async def test_emit_from_another_thread_is_sent(
        aggregators: Aggregators, publishers: Publishers,
        session: aiohttp.ClientSession) -> None:
    aggregator = await aggregators.start()
    publisher = publishers.start()
    await wait_for(lambda: publisher.connected_to is not None, what="a connection")
    lines = [app_line(n) for n in range(30)]

    def produce() -> None:          # as a cell's Docker log reader does, in a worker thread
        for envelope in lines:
            publisher.emit(envelope)

    await asyncio.to_thread(produce)

    async def all_arrived() -> bool:
        return await recent(session, aggregator.base_url, "web") == lines

    # No flush() here: the thread's emits alone must wake the sender.
    await wait_until(all_arrived, what="the thread's lines")


async def test_batches_from_a_thread_and_from_the_loop_are_sent_without_flush(
        aggregators: Aggregators, publishers: Publishers,
        session: aiohttp.ClientSession) -> None:
    aggregator = await aggregators.start()
    publisher = publishers.start()
    await wait_for(lambda: publisher.connected_to is not None, what="a connection")
    sent: list[Envelope] = []

    async def all_arrived() -> bool:
        return await recent(session, aggregator.base_url, "web") == sent

    # A thread's batch schedules one wake-up of the sender; once that ran, the next batch (and
    # a single emit) must schedule another, or these lines would wait for unrelated traffic.
    for round_ in range(3):
        batch = [app_line(100 * round_ + n) for n in range(40)]
        sent.extend(batch)
        await asyncio.to_thread(publisher.emit_many, batch)
        await wait_until(all_arrived, what=f"the thread's batch {round_}")
    single = app_line(999)
    sent.append(single)
    await asyncio.to_thread(publisher.emit, single)
    await wait_until(all_arrived, what="the thread's single line")

    # The router's case: batches from the loop's own thread.
    for round_ in range(2):
        batch = [app_line(1000 + 100 * round_ + n) for n in range(40)]
        sent.extend(batch)
        publisher.emit_many(batch)
        await wait_until(all_arrived, what=f"the loop's batch {round_}")


async def test_a_huge_line_is_truncated_then_split_not_refused(
        aggregators: Aggregators, publishers: Publishers,
        session: aiohttp.ClientSession) -> None:
    aggregator = await aggregators.start()
    publisher = publishers.start()
    publisher.emit(Envelope.now("web", "APP", "0", "é" * 5_000_000))   # ~10 MB as UTF-8
    publisher.emit(Envelope.now("web", "APP", "0", "next"))
    assert await publisher.flush(DEADLINE_S)
    *pieces, following = await recent(session, aggregator.base_url, "web")
    assert all(len(p.message.encode()) <= MAX_MESSAGE_BYTES for p in pieces)
    assert "".join(p.message for p in pieces) == "é" * MAX_MESSAGE_CHARS + " [truncated]"
    assert following.message == "next"
