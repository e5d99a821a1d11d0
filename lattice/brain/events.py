"""`GET /v1/events`: server-sent events for DesiredLRPs, ActualLRPs and Tasks.

Built on informers of the three prefixes: after their first listing, every change is one event,
`<kind>_created` `{"<kind>": record}`, `<kind>_changed` `{"before", "after"}` or
`<kind>_removed` `{"<kind>": record}`, with `kind` one of `desired_lrp` (its scheduling info),
`actual_lrp` and `task`, and the record as stored in etcd.

Slow consumers are dropped, not waited for (Diego's event hub): each subscriber has a bounded
buffer; publishing never blocks, and a subscriber whose buffer is full is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass

import structlog
from aiohttp import web

from lattice.store import Change, Etcd, Informer, keys
from lattice.store.informer import ChangeHandler

log = structlog.get_logger("lattice.brain.events")

SUBSCRIBER_BUFFER = 1024
# A peer that takes longer than this to accept one event is treated as gone.
WRITE_TIMEOUT_S = 10.0
# A comment line this often when nothing happens: proxies keep the stream, dead peers show.
HEARTBEAT_S = 15.0

KIND_BY_PREFIX = {
    keys.SCHEDULING: "desired_lrp",
    keys.ACTUAL: "actual_lrp",
    keys.TASKS: "task",
}


@dataclass(frozen=True)
class Event:
    type: str
    data: dict[str, object]

    def encode(self) -> bytes:
        return f"event: {self.type}\ndata: {json.dumps(self.data)}\n\n".encode()


def event_for(kind: str, change: Change) -> Event | None:
    """The event of one informer change; None for a record that is not JSON."""
    try:
        old = None if change.old is None else json.loads(change.old)
        new = None if change.new is None else json.loads(change.new)
    except ValueError:
        log.warning("event-record-not-json", key=change.key)
        return None
    if old is None and new is not None:
        return Event(f"{kind}_created", {kind: new})
    if new is None:
        return Event(f"{kind}_removed", {kind: old})
    return Event(f"{kind}_changed", {"before": old, "after": new})


class Subscriber:
    def __init__(self, buffer: int) -> None:
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue(buffer + 1)
        self._buffer = buffer
        self.dropped = False

    def offer(self, event: Event) -> bool:
        """Queue `event`; False (and closed) when the buffer is full."""
        if self._queue.qsize() >= self._buffer:
            self.close()
            self.dropped = True
            return False
        self._queue.put_nowait(event)
        return True

    def close(self) -> None:
        # One slot is kept free for this marker, so closing never fails.
        if self._queue.qsize() <= self._buffer:
            self._queue.put_nowait(None)

    async def next(self) -> Event | None:
        """The next event; None once closed or dropped."""
        return await self._queue.get()


class EventHub:
    def __init__(self, buffer: int = SUBSCRIBER_BUFFER) -> None:
        self._buffer = buffer
        self._subscribers: set[Subscriber] = set()

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[Subscriber]:
        subscriber = Subscriber(self._buffer)
        self._subscribers.add(subscriber)
        try:
            yield subscriber
        finally:
            self._subscribers.discard(subscriber)

    def publish(self, event: Event) -> None:
        for subscriber in list(self._subscribers):
            if not subscriber.offer(event):
                self._subscribers.discard(subscriber)
                log.warning("events-subscriber-dropped", buffer=self._buffer)

    def close(self) -> None:
        for subscriber in self._subscribers:
            subscriber.close()
        self._subscribers.clear()


class ClusterEvents:
    """Informers on the three prefixes feeding one hub; run `run()` as a task."""

    def __init__(self, etcd: Etcd, hub: EventHub | None = None) -> None:
        self.hub = hub or EventHub()
        self._by_prefix = {
            prefix: Informer(etcd, prefix, on_change=self._handler(prefix, kind))
            for prefix, kind in KIND_BY_PREFIX.items()
        }
        self.informers = list(self._by_prefix.values())

    def _handler(self, prefix: str, kind: str) -> ChangeHandler:
        def on_change(change: Change) -> None:
            if not self._by_prefix[prefix].synced.is_set():
                return          # the first listing is the starting state, not news
            event = event_for(kind, change)
            if event is not None:
                self.hub.publish(event)

        return on_change

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for informer in self.informers:
                group.create_task(informer.run())


EVENT_HUB = web.AppKey("event_hub", EventHub)


async def stream_events(request: web.Request) -> web.StreamResponse:
    hub = request.app[EVENT_HUB]
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    with hub.subscribe() as subscriber:
        log.info("events-subscribed", subscribers=hub.subscribers)
        while True:
            try:
                event = await asyncio.wait_for(subscriber.next(), HEARTBEAT_S)
            except TimeoutError:
                payload = b": heartbeat\n\n"
            else:
                if event is None:
                    break       # dropped as too slow, or the brain is stopping
                payload = event.encode()
            try:
                await asyncio.wait_for(response.write(payload), WRITE_TIMEOUT_S)
            except (TimeoutError, ConnectionResetError):
                log.info("events-peer-gone")
                break
    return response


async def _close_hub(app: web.Application) -> None:
    app[EVENT_HUB].close()    # ends every stream, so shutdown does not wait for them


def register_event_routes(app: web.Application, hub: EventHub) -> None:
    app[EVENT_HUB] = hub
    app.on_shutdown.append(_close_hub)
    app.router.add_get("/v1/events", stream_events)
