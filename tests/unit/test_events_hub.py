"""The event hub: changes become events; a slow subscriber is dropped, never waited for."""

from __future__ import annotations

import json

from lattice.brain.events import Event, EventHub, event_for
from lattice.store import Change


def test_changes_become_created_changed_removed_events() -> None:
    created = event_for("actual_lrp", Change("k", None, b'{"index": 0}', 5))
    changed = event_for("actual_lrp", Change("k", b'{"index": 0}', b'{"index": 1}', 6))
    removed = event_for("actual_lrp", Change("k", b'{"index": 1}', None))
    assert created == Event("actual_lrp_created", {"actual_lrp": {"index": 0}})
    assert changed == Event("actual_lrp_changed", {"before": {"index": 0}, "after": {"index": 1}})
    assert removed == Event("actual_lrp_removed", {"actual_lrp": {"index": 1}})
    assert event_for("task", Change("k", None, b"not json")) is None
    text = created.encode().decode()
    assert text.startswith("event: actual_lrp_created\ndata: ")
    assert text.endswith("\n\n")
    assert json.loads(text.split("data: ", 1)[1]) == {"actual_lrp": {"index": 0}}


async def test_a_full_subscriber_is_dropped_and_the_others_keep_receiving() -> None:
    hub = EventHub(buffer=4)
    with hub.subscribe() as slow, hub.subscribe() as fast:
        for n in range(10):
            hub.publish(Event("e", {"n": n}))            # never blocks
            got = await fast.next()
            assert got is not None
            assert got.data == {"n": n}
        assert slow.dropped
        assert not fast.dropped
        assert hub.subscribers == 1
        received = []
        while (event := await slow.next()) is not None:   # its backlog, then the end
            received.append(event.data["n"])
        assert received == [0, 1, 2, 3]


async def test_closing_the_hub_ends_every_stream() -> None:
    hub = EventHub(buffer=2)
    with hub.subscribe() as one:
        hub.publish(Event("e", {}))
        hub.close()
        assert await one.next() is not None
        assert await one.next() is None
        assert hub.subscribers == 0
