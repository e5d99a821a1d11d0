"""LogPublisher.room(): a paced reader never hangs when nothing can drain the backlog."""

from __future__ import annotations

import asyncio
from typing import cast

from lattice.store import Etcd
from logagg import Envelope, LogPublisher


async def test_room_returns_at_once_with_no_aggregator_even_when_the_backlog_is_full() -> None:
    # run() is never started: the etcd client is not used.
    publisher = LogPublisher(cast(Etcd, None), backlog=100)
    for n in range(150):
        publisher.emit(Envelope.now("web", "APP", "0", f"line {n}"))
    await asyncio.wait_for(publisher.room(), 0.5)
    assert publisher.dropped_total == 50      # emit() still drops the oldest, as before
