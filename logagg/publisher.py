"""The producer side: how a cell hands its containers' lines to the log aggregator.

    emit() ──> bounded backlog ──> run(): frames of up to MAX_BATCH lines ──> ws://<doppler>/ingest
                (oldest dropped      (reconnects with backoff; follows the
                 and counted)         `doppler` service records in etcd)

`emit` (one line) and `emit_many` (a batch: one lock and at most one wake-up of the sender for
all of it) never block and never raise, and may be called from any thread (the Docker SDK's
log streams are blocking and run in threads). While the aggregator is away lines wait in the
backlog; when it is full the oldest are dropped and counted, and the next frame sent starts
with one `LGR` "N messages dropped" line per affected app: a loss is never silent.

A line counts as sent once the aggregator acknowledged its frame (one "ack" text frame per
ingest frame, in order). Frames not acknowledged when the connection ends go back to the front
of the backlog and are sent again to the next aggregator: an aggregator restart loses no line
(a lost ack can repeat a frame: at least once). At most MAX_UNACKED_FRAMES are in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import threading
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass

import aiohttp
import structlog

from lattice.auth import Credentials
from lattice.models import ServiceRecord
from lattice.store import Change, Etcd, Informer, keys
from logagg.envelope import MAX_MESSAGE_BYTES, Envelope, dropped_notice, split_message
from logagg.frames import encode_envelope, join_frame

log = structlog.get_logger("logagg.publisher")

SERVICE_PREFIX = keys.SERVICES + "doppler/"
MAX_BATCH = 500
# A frame is cut before it grows past this many characters of message text (JSON escaping can
# grow it, but stays far below the aggregator's 16 MiB frame limit).
MAX_FRAME_CHARS = 1024 * 1024
# Longer messages are cut (then split into envelopes of MAX_MESSAGE_BYTES): one huge line must
# not turn into thousands of envelopes.
MAX_MESSAGE_CHARS = 64 * 1024
TRUNCATED_SUFFIX = " [truncated]"
# A UTF-8 character takes at most 4 bytes: a message this short is one envelope, known without
# encoding it (as is an ASCII one up to MAX_MESSAGE_BYTES; str.isascii() costs nothing).
_SURELY_ONE_PIECE_CHARS = MAX_MESSAGE_BYTES // 4
RETRY_INITIAL_S = 0.1
RETRY_MAX_S = 5.0
CONNECT_TIMEOUT_S = 5.0
HEARTBEAT_S = 10.0
CLOSE_TIMEOUT_S = 2.0
ACK = "ack"                 # the aggregator's answer to each ingest frame
MAX_UNACKED_FRAMES = 8
# room(): readers that can wait pause while the backlog is fuller than this share of it...
PACE_HIGH_WATER = 0.5
# ...but never longer than this per call, so that a reader is delayed, never stuck.
PACE_MAX_WAIT_S = 2.0


@dataclass(frozen=True)
class _Batch:
    """Lines taken from the backlog for one frame, with the drop counts reported in it."""

    frame: str
    notices: dict[str, int]
    lines: list[Envelope]

    @property
    def resolves(self) -> int:
        """How many emitted lines this frame accounts for: the lines, and the ones dropped."""
        return sum(self.notices.values()) + len(self.lines)


def _estimated_chars(envelope: Envelope) -> int:
    # Cheap (no encoding under the lock); the constant covers the field names and punctuation.
    return (len(envelope.message) + len(envelope.app_id) + len(envelope.source_type)
            + len(envelope.source_instance) + 120)


def _pieces(envelope: Envelope) -> list[Envelope]:
    """The envelopes that carry `envelope`'s message: cut to MAX_MESSAGE_CHARS, then split into
    pieces of MAX_MESSAGE_BYTES (same metadata, same timestamp)."""
    message = envelope.message
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[:MAX_MESSAGE_CHARS] + TRUNCATED_SUFFIX
    pieces = split_message(message)
    if len(pieces) == 1:
        return [envelope if message is envelope.message
                else dataclasses.replace(envelope, message=message)]
    return [dataclasses.replace(envelope, message=piece) for piece in pieces]


def aggregator_addresses(informer: Informer) -> list[str]:
    """The `doppler` addresses in the informer's copy, in key order (a stable first choice)."""
    addresses: list[str] = []
    for key in sorted(informer.items):
        try:
            record = ServiceRecord.from_dict(json.loads(informer.items[key].value))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("service-record-unreadable", key=key, error=str(exc))
            continue
        addresses.append(record.address)
    return addresses


class LogPublisher:
    def __init__(self, etcd: Etcd, *, backlog: int = 10_000,
                 credentials: Credentials | None = None) -> None:
        if backlog < 1:
            raise ValueError(f"publisher backlog must hold at least 1 line, got {backlog}")
        self._etcd = etcd
        # The aggregator of a box with credentials refuses an ingest without them.
        self._headers = {} if credentials is None else {"Authorization": credentials.header()}
        self.backlog_capacity = backlog
        self.dropped_total = 0          # lines dropped from a full backlog, over the lifetime
        # Guards the backlog and the counters: emit() may run on other threads.
        self._lock = threading.Lock()
        self._backlog: deque[Envelope] = deque()
        self._dropped: Counter[str] = Counter()    # per app, dropped and not yet reported
        self._emitted = 0
        self._resolved = 0              # emitted lines sent, or dropped and reported as such
        self._loop: asyncio.AbstractEventLoop | None = None
        # The thread that runs run()'s loop: an emit from it sets the event directly. Compared
        # with threading.get_ident(), not asyncio.get_running_loop() (a getpid() call on 3.11).
        self._loop_thread: int | None = None
        # A wake-up from another thread is on its way to the loop (under the lock): later
        # emits from threads add their lines and leave it at that one call_soon_threadsafe.
        self._wake_scheduled = False
        self._wakeup = asyncio.Event()            # lines to send, a closed peer, new records
        self._records_changed = asyncio.Event()
        self._records_version = 0                 # counts changes of the `doppler` records
        self._progress = asyncio.Event()          # a frame was acked (flush waits on it)
        self._room = asyncio.Event()              # a frame was acked, or the connection ended
        self._unacked: deque[_Batch] = deque()    # sent on the current connection, not acked
        self._connected_to: str | None = None

    @property
    def connected_to(self) -> str | None:
        """The aggregator address the publisher is connected to now, if any."""
        return self._connected_to

    # -- producer side ----------------------------------------------------------------------

    def emit(self, envelope: Envelope) -> None:
        """Queue one line to send; never blocks, never raises; safe from any thread.

        A line longer than MAX_MESSAGE_BYTES leaves as several envelopes (same metadata, same
        timestamp), so that no subscriber or drain receives an unbounded message.
        """
        self.emit_many((envelope,))

    def emit_many(self, envelopes: Iterable[Envelope]) -> None:
        """Queue lines in order, as emit() of each would, for one lock and one wake-up."""
        parts: list[Envelope] = []
        keep = parts.append
        for envelope in envelopes:
            message = envelope.message
            length = len(message)
            # A message that surely fits one envelope is queued as it is, without encoding it
            # to find out: this loop runs once per line the router and the cells log.
            if length <= _SURELY_ONE_PIECE_CHARS or (length <= MAX_MESSAGE_BYTES
                                                     and message.isascii()):
                keep(envelope)
            else:
                parts.extend(_pieces(envelope))
        if parts:
            self._queue(parts)

    def _queue(self, parts: list[Envelope]) -> None:
        on_loop = threading.get_ident() == self._loop_thread
        loop_to_wake: asyncio.AbstractEventLoop | None = None
        with self._lock:
            self._emitted += len(parts)
            self._backlog.extend(parts)
            # Trimming once after the whole batch drops exactly the lines (and counts them per
            # app) that trimming after each line would: the oldest beyond the capacity.
            self._trim_locked()
            if not on_loop and not self._wake_scheduled and self._loop is not None:
                self._wake_scheduled = True
                loop_to_wake = self._loop
        if on_loop:
            self._wakeup.set()
        elif loop_to_wake is not None:
            # The loop may have closed after this thread read it: then nobody is left to wake
            # (and the next run() starts by looking at the backlog and clearing the flag).
            with contextlib.suppress(RuntimeError):
                loop_to_wake.call_soon_threadsafe(self._wake_from_thread)
        # run() has not started (no loop): it looks at the backlog first thing.

    def _wake_from_thread(self) -> None:
        # Cleared before the event is set: a line queued after this clear schedules its own
        # wake-up, and one queued before it is in the backlog when the sender wakes.
        with self._lock:
            self._wake_scheduled = False
        self._wakeup.set()

    def _trim_locked(self) -> None:
        while len(self._backlog) > self.backlog_capacity:
            oldest = self._backlog.popleft()
            self._dropped[oldest.app_id] += 1
            self.dropped_total += 1

    # The cell's contract takes a timeout and answers False, rather than raising TimeoutError.
    async def flush(self, timeout: float) -> bool:  # noqa: ASYNC109 - see the comment above
        """True once every line emitted so far was sent (or, if dropped, reported as dropped);
        False if that did not happen within `timeout` seconds."""
        with self._lock:
            target = self._emitted
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            with self._lock:
                if self._resolved >= target:
                    return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), remaining)

    async def room(self) -> None:
        """Wait until the backlog is at most half full: for a reader that can pause without
        losing anything (a container's log stream, which Docker keeps in its log file).

        A burst then waits in Docker's log instead of being dropped here. Returns at once while
        no aggregator is connected (nothing would drain the backlog: emit() drops the oldest, as
        before), and after PACE_MAX_WAIT_S at most.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PACE_MAX_WAIT_S
        high_water = self.backlog_capacity * PACE_HIGH_WATER
        while self._connected_to is not None:
            with self._lock:
                if len(self._backlog) <= high_water:
                    return
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._room.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._room.wait(), remaining)

    # -- the sending side -------------------------------------------------------------------

    def _take_batch(self) -> _Batch | None:
        with self._lock:
            notices = dict(self._dropped)
            self._dropped.clear()
            lines: list[Envelope] = []
            chars = 0
            while self._backlog and len(lines) < MAX_BATCH:
                size = _estimated_chars(self._backlog[0])
                if lines and chars + size > MAX_FRAME_CHARS:
                    break
                lines.append(self._backlog.popleft())
                chars += size
        if not notices and not lines:
            return None
        parts = [encode_envelope(dropped_notice(app_id, count))
                 for app_id, count in notices.items()]
        parts.extend(encode_envelope(line) for line in lines)
        return _Batch(join_frame(parts), notices, lines)

    def _put_back(self, batch: _Batch) -> None:
        """A frame that was not sent: its lines go back in front, its drop counts too."""
        with self._lock:
            self._backlog.extendleft(reversed(batch.lines))
            self._dropped.update(batch.notices)
            self._trim_locked()

    def _settle(self, batch: _Batch) -> None:
        with self._lock:
            self._resolved += batch.resolves
        if batch.notices:
            log.warning("publisher-lines-dropped", dropped=batch.notices)
        self._progress.set()
        self._room.set()

    def _on_records_change(self, _: Change) -> None:
        self._records_version += 1
        self._records_changed.set()
        self._wakeup.set()

    async def run(self) -> None:
        """Send lines to the aggregator found in etcd until cancelled."""
        if self._loop is not None:
            raise RuntimeError("LogPublisher.run() is already running")
        with self._lock:
            self._loop = asyncio.get_running_loop()
            self._loop_thread = threading.get_ident()
            self._wake_scheduled = False    # a wake-up meant for an earlier run's loop
        self._wakeup.set()      # lines may have been emitted before run() started
        informer = Informer(self._etcd, SERVICE_PREFIX, on_change=self._on_records_change)
        informer_task = asyncio.create_task(informer.run())
        try:
            timeout = aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT_S)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                await self._follow_aggregators(session, informer)
        finally:
            informer_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await informer_task
            with self._lock:
                self._loop = None
                self._loop_thread = None

    async def _follow_aggregators(self, session: aiohttp.ClientSession,
                                  informer: Informer) -> None:
        delay = RETRY_INITIAL_S
        while True:
            self._records_changed.clear()
            version = self._records_version
            addresses = aggregator_addresses(informer)
            if not addresses:
                await self._records_changed.wait()
                continue
            address = addresses[0]
            if await self._publish_to(session, address, informer, version):
                delay = RETRY_INITIAL_S     # it worked a moment ago: try again soon
            # Back off, but move at once when the records change (a new aggregator appeared).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._records_changed.wait(), delay)
            delay = min(delay * 2, RETRY_MAX_S)

    async def _publish_to(self, session: aiohttp.ClientSession, address: str,
                          informer: Informer, records_version: int) -> bool:
        """Send frames to `address` until it goes away or moves; False if it was unreachable."""
        aggregator_log = log.bind(address=address)
        try:
            ws = await session.ws_connect(
                f"ws://{address}/ingest",
                headers=self._headers,
                heartbeat=HEARTBEAT_S,
                timeout=aiohttp.ClientWSTimeout(ws_close=CLOSE_TIMEOUT_S),
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            aggregator_log.warning("aggregator-unreachable", error=str(exc) or type(exc).__name__)
            return False
        async with ws:
            self._connected_to = address
            aggregator_log.info("aggregator-connected")
            listener = asyncio.create_task(self._until_closed(ws))
            try:
                reason = await self._send_until_gone(ws, address, informer, listener,
                                                     records_version)
            finally:
                self._connected_to = None
                self._room.set()        # paced readers stop waiting for this connection
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener
                self._requeue_unacked()
            aggregator_log.info("aggregator-disconnected", reason=reason,
                                close_code=ws.close_code)
        return True

    async def _until_closed(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        # The aggregator acks each frame in order; reading is also how its close shows.
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.TEXT and msg.data == ACK and self._unacked:
                self._settle(self._unacked.popleft())
                self._wakeup.set()
        self._wakeup.set()

    def _requeue_unacked(self) -> None:
        """The connection ended: frames it did not acknowledge are sent again, in order."""
        while self._unacked:
            self._put_back(self._unacked.pop())

    async def _send_until_gone(self, ws: aiohttp.ClientWebSocketResponse, address: str,
                               informer: Informer, listener: asyncio.Task[None],
                               seen_version: int) -> str:
        while True:
            self._wakeup.clear()
            if ws.closed or listener.done():
                return "closed"
            if self._records_version != seen_version:
                seen_version = self._records_version
                addresses = aggregator_addresses(informer)
                # Without any record (etcd away, a lease lapsed) the live connection is best.
                if addresses and address not in addresses:
                    return "moved"
            if len(self._unacked) >= MAX_UNACKED_FRAMES:
                await self._wakeup.wait()      # an ack (or the close) wakes it
                continue
            batch = self._take_batch()
            if batch is None:
                await self._wakeup.wait()
                continue
            sent = False
            try:
                await ws.send_str(batch.frame)
                sent = True
            except (ConnectionError, aiohttp.ClientError) as exc:
                log.info("aggregator-send-failed", address=address, error=str(exc))
                return "send-failed"
            finally:
                # Also on cancellation: lines not written stay in the backlog, none vanish.
                if sent:
                    self._unacked.append(batch)
                else:
                    self._put_back(batch)
