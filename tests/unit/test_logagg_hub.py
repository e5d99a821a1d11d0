"""The hub's drop policy: a stalled subscriber loses its backlog to one notice, a fast one
gets everything, and publishing never waits for anyone."""

from __future__ import annotations

import asyncio

import pytest

from logagg.envelope import Envelope
from logagg.hub import Hub, Subscription


def line(app_id: str, n: int) -> Envelope:
    return Envelope(app_id, "APP", "0", "OUT", n, f"line {n}")


def drain(subscription: Subscription) -> list[Envelope]:
    received: list[Envelope] = []
    while (envelope := subscription.get_nowait()) is not None:
        received.append(envelope)
    return received


def test_fast_subscriber_gets_everything_beside_a_stalled_one() -> None:
    hub = Hub(queue_size=10)
    fast = hub.subscribe("web")
    stalled = hub.subscribe("web")
    received: list[Envelope] = []
    for n in range(100):
        hub.publish(line("web", n))
        received.extend(drain(fast))       # keeps up: reads after every line
    assert [e.timestamp for e in received] == list(range(100))
    assert fast.dropped_total == 0
    assert stalled.dropped_total > 0


def test_stalled_subscriber_gets_one_notice_for_its_dropped_backlog() -> None:
    hub = Hub(queue_size=10)
    stalled = hub.subscribe("web")
    for n in range(25):
        hub.publish(line("web", n))
    received = drain(stalled)
    # Two overflows (at lines 10 and 20) dropped 20 lines; they stand as one notice, first.
    notice, *rest = received
    assert (notice.source_type, notice.app_id, notice.message) == ("LGR", "web",
                                                                   "20 messages dropped")
    assert notice.message_type == "ERR"
    assert [e.timestamp for e in rest] == list(range(20, 25))
    assert stalled.dropped_total == 20


def test_queue_is_bounded_at_its_size() -> None:
    hub = Hub(queue_size=3)
    subscriber = hub.subscribe("web")
    for n in range(3):
        hub.publish(line("web", n))
    assert [e.timestamp for e in drain(subscriber)] == [0, 1, 2]     # exactly full: no drop
    for n in range(4):
        hub.publish(line("web", n))
    assert [e.message for e in drain(subscriber)] == ["3 messages dropped", "line 3"]


def test_lines_go_only_to_subscribers_of_their_app() -> None:
    hub = Hub()
    web = hub.subscribe("web")
    worker = hub.subscribe("worker")
    hub.publish(line("web", 1))
    hub.publish(line("nobody-listens", 2))
    assert [e.timestamp for e in drain(web)] == [1]
    assert drain(worker) == []


def test_firehose_gets_every_app_and_one_notice_per_app() -> None:
    hub = Hub(queue_size=4)
    firehose = hub.subscribe_all()
    for n in range(3):
        hub.publish(line("web", n))
        hub.publish(line("worker", n))
    received = drain(firehose)
    notices = {e.app_id: e.message for e in received if e.source_type == "LGR"}
    # The overflow came at the 5th line (web 2): web 0, web 1, worker 0, worker 1 were dropped.
    assert notices == {"web": "2 messages dropped", "worker": "2 messages dropped"}
    assert [(e.app_id, e.timestamp) for e in received if e.source_type == "APP"] == [
        ("web", 2), ("worker", 2)]
    assert hub.subscriber_count() == 1


async def test_iteration_waits_for_lines_and_ends_on_close() -> None:
    hub = Hub()
    subscriber = hub.subscribe("web")
    got: list[int] = []
    both_arrived = asyncio.Event()

    async def collect() -> None:
        async for envelope in subscriber:
            got.append(envelope.timestamp)
            if len(got) == 2:
                both_arrived.set()

    collector = asyncio.create_task(collect())
    hub.publish(line("web", 1))
    hub.publish(line("web", 2))
    await asyncio.wait_for(both_arrived.wait(), 5)
    assert not collector.done()         # it waits for more rather than ending
    subscriber.close()
    await asyncio.wait_for(collector, 5)
    assert got == [1, 2]
    assert hub.subscriber_count("web") == 0


async def test_closing_the_hub_ends_every_subscription_and_refuses_new_ones() -> None:
    hub = Hub()
    one, firehose = hub.subscribe("web"), hub.subscribe_all()
    hub.close()
    assert one.closed
    assert firehose.closed
    assert [e async for e in one] == []
    with pytest.raises(RuntimeError, match="hub is closed"):
        hub.subscribe("web")


def test_rejects_a_queue_size_below_one() -> None:
    with pytest.raises(ValueError, match="queue size must be at least 1"):
        Hub(queue_size=0)
