"""Live subscribers, per app and for every app (the firehose).

Each subscriber has its own bounded queue. `publish` never waits: when a subscriber's queue is
full, its whole backlog is dropped and stands as one `LGR` "N messages dropped" line per app,
handed out before anything newer (Diego's event hub evicts; loggregator's diode notes the loss).
A slow subscriber therefore costs the producers and the other subscribers nothing, and its
reader still learns that lines are missing.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Callable

import structlog

from logagg.envelope import Envelope, dropped_notice

log = structlog.get_logger("logagg.hub")

DEFAULT_QUEUE_SIZE = 1000
FIREHOSE = "*"   # what a firehose subscription reports as its app id in logs


class Subscription:
    """One subscriber's queue; iterate it (`async for`) to receive, `close()` to leave."""

    def __init__(self, app_id: str | None, *, capacity: int,
                 on_close: Callable[[Subscription], None]) -> None:
        if capacity < 1:
            raise ValueError(f"subscriber queue size must be at least 1, got {capacity}")
        self.app_id = app_id          # None: every app
        self.capacity = capacity
        self.dropped_total = 0        # lines this subscriber never got, over its lifetime
        self._queue: deque[Envelope] = deque()
        # Lines dropped and not yet reported, per app; reported before the queue, being older.
        self._dropped: Counter[str] = Counter()
        self._ready = asyncio.Event()
        self._closed = False
        self._on_close = on_close

    @property
    def closed(self) -> bool:
        return self._closed

    def offer(self, envelope: Envelope) -> None:
        """Queue one line; never blocks. A full queue is dropped whole to make room."""
        if self._closed:
            return
        if len(self._queue) >= self.capacity:
            self._dropped.update(e.app_id for e in self._queue)
            self.dropped_total += len(self._queue)
            log.warning("subscriber-backlog-dropped", app_id=self.app_id or FIREHOSE,
                        dropped=len(self._queue))
            self._queue.clear()
        self._queue.append(envelope)
        self._ready.set()

    def get_nowait(self) -> Envelope | None:
        """The next line (a drop notice first, if any), or None when nothing is waiting."""
        if self._dropped:
            app_id = next(iter(self._dropped))
            return dropped_notice(app_id, self._dropped.pop(app_id))
        if self._queue:
            return self._queue.popleft()
        return None

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Envelope:
        """The next line; the iteration ends as soon as the subscription is closed."""
        while not self._closed:
            envelope = self.get_nowait()
            if envelope is not None:
                return envelope
            self._ready.clear()
            await self._ready.wait()
        raise StopAsyncIteration

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.clear()
        self._dropped.clear()
        self._ready.set()     # wake the reader so that its iteration ends now
        self._on_close(self)


class Hub:
    def __init__(self, *, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        if queue_size < 1:
            raise ValueError(f"subscriber queue size must be at least 1, got {queue_size}")
        self.queue_size = queue_size
        self._by_app: dict[str, set[Subscription]] = {}
        self._firehose: set[Subscription] = set()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def subscribe(self, app_id: str) -> Subscription:
        """Live lines of one app from now on."""
        subscription = self._new(app_id)
        self._by_app.setdefault(app_id, set()).add(subscription)
        return subscription

    def subscribe_all(self) -> Subscription:
        """The firehose: live lines of every app from now on."""
        subscription = self._new(None)
        self._firehose.add(subscription)
        return subscription

    def _new(self, app_id: str | None) -> Subscription:
        if self._closed:
            raise RuntimeError("the hub is closed: the aggregator is shutting down")
        return Subscription(app_id, capacity=self.queue_size, on_close=self._remove)

    def _remove(self, subscription: Subscription) -> None:
        if subscription.app_id is None:
            self._firehose.discard(subscription)
            return
        subscribers = self._by_app.get(subscription.app_id)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._by_app[subscription.app_id]

    def publish(self, envelope: Envelope) -> None:
        """Hand one line to every interested subscriber; never waits for any of them."""
        for subscription in self._by_app.get(envelope.app_id, ()):
            subscription.offer(envelope)
        for subscription in self._firehose:
            subscription.offer(envelope)

    def subscriber_count(self, app_id: str | None = None) -> int:
        """Subscribers of `app_id`, or of the firehose when `app_id` is None."""
        if app_id is None:
            return len(self._firehose)
        return len(self._by_app.get(app_id, ()))

    def close(self) -> None:
        """End every subscription (shutdown); later `subscribe` calls fail."""
        self._closed = True
        for subscription in [*self._firehose, *(s for subs in self._by_app.values() for s in subs)]:
            subscription.close()
