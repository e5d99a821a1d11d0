"""One syslog drain: an app's lines sent to one `tcp://HOST:PORT` as RFC 5424 over TCP.

    offer() ──> bounded queue ──> run(): connect, write octet-counted frames, reconnect
                (full: the oldest      with exponential backoff (0.1 s doubling, capped at
                 line is dropped        RETRY_MAX_S) whenever the connection fails or the
                 and counted)           drain closes it

`offer` never blocks, so a slow or absent drain costs the aggregator, the other drains and the
subscribers nothing. Delivery is at most once, like loggregator's: lines written into a
connection that the drain then drops are lost (TCP acknowledges no syslog message); lines queued
while no connection is up wait for the next one.

The URL's credentials, if any, appear in no log event: events carry `redact(url)` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque

import structlog

from lattice.models.syslog_drain import DrainAddress, drain_address, redact
from logagg.drain_format import encode
from logagg.envelope import Envelope

log = structlog.get_logger("logagg.drain")

DEFAULT_QUEUE_SIZE = 10_000
RETRY_INITIAL_S = 0.1
RETRY_MAX_S = 4.0
CONNECT_TIMEOUT_S = 5.0
# A connection that lived this long was a real one: the next failure starts the backoff over.
STABLE_S = 1.0
MAX_BATCH = 500                 # lines per write


class DrainWriter:
    def __init__(self, app_id: str, url: str, *, queue_size: int = DEFAULT_QUEUE_SIZE,
                 retry_initial_s: float = RETRY_INITIAL_S,
                 retry_max_s: float = RETRY_MAX_S) -> None:
        if queue_size < 1:
            raise ValueError(f"drain queue size must be at least 1, got {queue_size}")
        self.app_id = app_id
        self.url = url
        self.address: DrainAddress = drain_address(url)
        self.queue_size = queue_size
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.sent_total = 0          # lines written to a connection
        self.dropped_total = 0       # lines dropped from a full queue
        self.connections = 0         # connections made, over the lifetime
        self.connected = False
        self._queue: deque[Envelope] = deque()
        self._dropped_unreported = 0
        self._wake = asyncio.Event()
        self._peer_closed = False
        self._task: asyncio.Task[None] | None = None
        self._log = log.bind(app_id=app_id, drain=redact(url))

    def offer(self, envelope: Envelope) -> None:
        """Queue one line; never blocks. A full queue drops its oldest line to make room."""
        if len(self._queue) >= self.queue_size:
            if not self._dropped_unreported:     # once per episode, not once per line
                self._log.warning("drain-queue-full", queue_size=self.queue_size,
                                  connected=self.connected)
            self._queue.popleft()
            self.dropped_total += 1
            self._dropped_unreported += 1
        self._queue.append(envelope)
        self._wake.set()

    @property
    def queued(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=f"drain-{self.app_id}")

    async def close(self) -> None:
        """Stop sending; what is still queued is dropped (the drain or the app was removed)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._queue.clear()

    async def run(self) -> None:
        """Connect, send, reconnect, until cancelled."""
        delay = self.retry_initial_s
        failing = False           # log the first failure of an outage, not every retry
        try:
            while True:
                try:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection(self.address.host, self.address.port),
                        CONNECT_TIMEOUT_S)
                except (OSError, TimeoutError) as exc:
                    if not failing:
                        self._log.warning("drain-connect-failed", error=str(exc) or "timeout",
                                          retry_s=delay)
                        failing = True
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.retry_max_s)
                    continue
                failing = False
                started = time.monotonic()
                self.connections += 1
                self.connected = True
                self._log.info("drain-connected", connections=self.connections)
                try:
                    await self._pump(reader, writer)
                except (OSError, ConnectionError) as exc:
                    self._log.warning("drain-disconnected", error=str(exc), sent=self.sent_total)
                finally:
                    self.connected = False
                    writer.transport.abort()
                if time.monotonic() - started >= STABLE_S:
                    delay = self.retry_initial_s
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_s)
        finally:
            self.connected = False

    async def _watch_peer(self, reader: asyncio.StreamReader) -> None:
        """A syslog drain sends nothing: end of stream or an error means it closed on us."""
        with contextlib.suppress(OSError, ConnectionError):
            while await reader.read(4096):
                pass
        self._peer_closed = True
        self._wake.set()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._peer_closed = False
        watcher = asyncio.create_task(self._watch_peer(reader))
        try:
            while True:
                if self._peer_closed:
                    raise ConnectionError("the drain closed the connection")
                if not self._queue:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                self._report_drops()
                count = min(len(self._queue), MAX_BATCH)
                data = b"".join(encode(self._queue.popleft()) for _ in range(count))
                writer.write(data)
                await writer.drain()
                self.sent_total += count
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    def _report_drops(self) -> None:
        # Once per batch at most, and only when something was lost since the last report.
        if self._dropped_unreported:
            self._log.warning("drain-lines-dropped", dropped=self._dropped_unreported,
                              dropped_total=self.dropped_total)
            self._dropped_unreported = 0
