"""`GET /v1/events`: server-sent events for DesiredLRPs, ActualLRPs and Tasks.

Built on informers of the three prefixes: after their first listing, every change is one event,
`<kind>_created` `{"<kind>": record}`, `<kind>_changed` `{"before", "after"}` or
`<kind>_removed` `{"<kind>": record}`, with `kind` one of `desired_lrp` (its scheduling info),
`actual_lrp` and `task`, and the record as stored in etcd.

Filter: `?process_guid=GUID` keeps only the DesiredLRP and ActualLRP events of that app. The
parameter may be repeated and each value may list several guids separated by commas
(`?process_guid=a,b&process_guid=c`): the stream carries the events of any of them. A filtered
stream carries no Task event: a Task is not an instance of any app (its task_guid is its own,
and its log_guid only labels log lines), and the filter's users (ltc's waits) watch an app's
instances. A guid that is not one (empty, other characters than letters, digits, '_' and '-',
longer than 63), or any other query parameter, is a 400 naming it.

Slow consumers are dropped, not waited for (Diego's event hub): each subscriber has a bounded
buffer; publishing never blocks, and a subscriber whose buffer is full is closed. A subscriber
whose peer has closed the connection is dropped within PEER_CHECK_S: aiohttp does not cancel the
handler when the peer goes (handler_cancellation is off) and a write only fails at the next
event or heartbeat, but it clears `request.transport` as soon as the socket reports the close.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass

import structlog
from aiohttp import web
from multidict import MultiMapping

from lattice.brain.errors import InvalidRequest
from lattice.models import FieldError
from lattice.models.desired import APP_NAME_PATTERN
from lattice.store import Change, Etcd, Informer, keys
from lattice.store.informer import ChangeHandler

log = structlog.get_logger("lattice.brain.events")

SUBSCRIBER_BUFFER = 1024
# A peer that takes longer than this to accept one event is treated as gone.
WRITE_TIMEOUT_S = 10.0
# A comment line this often when nothing happens: proxies keep the stream, dead peers show.
HEARTBEAT_S = 15.0
# How often a stream with nothing to send checks that its peer is still connected.
PEER_CHECK_S = 0.5
FILTER_PARAMETER = "process_guid"
MAX_GUID_LENGTH = 63

KIND_BY_PREFIX = {
    keys.SCHEDULING: "desired_lrp",
    keys.ACTUAL: "actual_lrp",
    keys.TASKS: "task",
}


@dataclass(frozen=True)
class Event:
    type: str
    data: dict[str, object]
    # The app (DesiredLRP/ActualLRP) the event is about; None for a task's. Not sent: the
    # filter's key.
    process_guid: str | None = None

    def encode(self) -> bytes:
        return f"event: {self.type}\ndata: {json.dumps(self.data)}\n\n".encode()


def process_guid_of(prefix: str, key: str) -> str | None:
    """The app a key of `prefix` belongs to; None under the tasks prefix."""
    if prefix == keys.SCHEDULING:
        return key[len(prefix):]
    if prefix == keys.ACTUAL:
        return key[len(prefix):].rpartition("/")[0]
    return None


def event_for(kind: str, change: Change, process_guid: str | None = None) -> Event | None:
    """The event of one informer change; None for a record that is not JSON."""
    try:
        old = None if change.old is None else json.loads(change.old)
        new = None if change.new is None else json.loads(change.new)
    except ValueError:
        log.warning("event-record-not-json", key=change.key)
        return None
    if old is None and new is not None:
        return Event(f"{kind}_created", {kind: new}, process_guid)
    if new is None:
        return Event(f"{kind}_removed", {kind: old}, process_guid)
    return Event(f"{kind}_changed", {"before": old, "after": new}, process_guid)


def parse_filter(query: MultiMapping[str]) -> frozenset[str] | None:
    """The process guids a stream is limited to (None: every event), from the request's query;
    InvalidRequest naming the parameter when bad."""
    unknown = sorted(set(query) - {FILTER_PARAMETER})
    if unknown:
        raise InvalidRequest(
            f"unknown query parameter {unknown[0]!r}: only {FILTER_PARAMETER!r} is accepted",
            [FieldError(name, "is not a parameter of /v1/events") for name in unknown],
        )
    values = query.getall(FILTER_PARAMETER, [])
    if not values:
        return None
    guids = [guid for value in values for guid in value.split(",")]
    problems = [FieldError(FILTER_PARAMETER, problem)
                for problem in map(_guid_problem, guids) if problem]
    if problems:
        raise InvalidRequest(f"invalid {FILTER_PARAMETER}: {problems[0].message}", problems)
    return frozenset(guids)


def _guid_problem(guid: str) -> str:
    if not guid:
        return "an empty process guid (a value is a comma-separated list of guids)"
    if not APP_NAME_PATTERN.match(guid):
        return f"{guid!r} may only contain letters, digits, '_' and '-'"
    if len(guid) > MAX_GUID_LENGTH:
        return f"{guid[:20]!r}... is longer than {MAX_GUID_LENGTH} characters"
    return ""


class Subscriber:
    def __init__(self, buffer: int, process_guids: frozenset[str] | None = None) -> None:
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue(buffer + 1)
        self._buffer = buffer
        self.process_guids = process_guids
        self.dropped = False

    def wants(self, event: Event) -> bool:
        return self.process_guids is None or event.process_guid in self.process_guids

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
    def subscribe(self, process_guids: frozenset[str] | None = None) -> Iterator[Subscriber]:
        """A subscriber of every event, or of the events of `process_guids` only."""
        subscriber = Subscriber(self._buffer, process_guids)
        self._subscribers.add(subscriber)
        try:
            yield subscriber
        finally:
            self._subscribers.discard(subscriber)

    def publish(self, event: Event) -> None:
        for subscriber in list(self._subscribers):
            if subscriber.wants(event) and not subscriber.offer(event):
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
            event = event_for(kind, change, process_guid_of(prefix, change.key))
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
    process_guids = parse_filter(request.query)    # before the 200: a bad filter is a 400
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    loop = asyncio.get_running_loop()
    with hub.subscribe(process_guids) as subscriber:
        log.info("events-subscribed", subscribers=hub.subscribers,
                 process_guids=sorted(process_guids) if process_guids else None)
        heartbeat_at = loop.time() + HEARTBEAT_S
        while True:
            try:
                event = await asyncio.wait_for(subscriber.next(), PEER_CHECK_S)
            except TimeoutError:
                if _peer_gone(request):
                    log.info("events-peer-gone")
                    break
                if loop.time() < heartbeat_at:
                    continue
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
            heartbeat_at = loop.time() + HEARTBEAT_S
    return response


def _peer_gone(request: web.Request) -> bool:
    # aiohttp sets the protocol's transport to None in connection_lost, which follows the
    # peer's FIN or RST as soon as the event loop reads it.
    transport = request.transport
    return transport is None or transport.is_closing()


async def _close_hub(app: web.Application) -> None:
    app[EVENT_HUB].close()    # ends every stream, so shutdown does not wait for them


def register_event_routes(app: web.Application, hub: EventHub) -> None:
    app[EVENT_HUB] = hub
    app.on_shutdown.append(_close_hub)
    app.router.add_get("/v1/events", stream_events)
