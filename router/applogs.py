"""RTR lines: one per request, to the app's log stream, formatted off the request's path.

The proxy only appends a tuple per request (`add`); `flush`, run every FLUSH_INTERVAL_S by
`run`, turns them into envelopes and hands them to the log publisher in one `emit_many` (one
lock, one wake-up of its sender). Building the line and the envelope costs more than the rest
of a request's bookkeeping, and doing it in one batch keeps it out of the request's latency.
If lines pile up faster than they are flushed (the loop is saturated), the newest beyond
MAX_PENDING are dropped and counted: requests never wait for their logs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Protocol

from logagg.envelope import Envelope

FLUSH_INTERVAL_S = 0.05
MAX_PENDING = 20_000

# app, index, host, method, target, status, duration_s, client_ip, epoch_ns
Pending = tuple[str, int, bytes, bytes, bytes, int, float, bytes, int]

# host, method, target, status, duration_s, index, client_ip
_LINE = b'%s - "%s %s" %d response_time:%.6f app_index:%d x_forwarded_for:"%s"'

_time_ns = time.time_ns
_new_object = object.__new__
# Envelope is a frozen dataclass: its __init__ sets each field through object.__setattr__,
# which costs as much as the rest of a line's formatting. Filling a new instance's __dict__
# makes an equal object (tests/unit/test_router_applogs.py checks it) in half the time; done
# only while Envelope keeps its fields in a __dict__ and validates nothing on construction.
_ENVELOPE_BY_DICT = (
    not hasattr(Envelope, "__slots__")
    and not hasattr(Envelope, "__post_init__")
    and tuple(Envelope.__dataclass_fields__)
    == ("app_id", "source_type", "source_instance", "message_type", "timestamp", "message")
)


class LogSink(Protocol):
    """Where RTR lines go (logagg's LogPublisher); `emit_many` must never block."""

    def emit_many(self, envelopes: Iterable[Envelope]) -> None: ...


class AppLogs:
    __slots__ = ("_pending", "dropped", "sink")

    def __init__(self, sink: LogSink) -> None:
        self.sink = sink
        self._pending: list[Pending] = []
        self.dropped = 0

    def add(self, app: str, index: int, host: bytes, method: bytes, target: bytes,
            status: int, duration_s: float, client_ip: bytes) -> None:
        pending = self._pending
        if len(pending) >= MAX_PENDING:
            self.dropped += 1
            return
        pending.append(
            (app, index, host, method, target, status, duration_s, client_ip, _time_ns())
        )

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return
        envelopes: list[Envelope] = []
        collect = envelopes.append
        by_dict = _ENVELOPE_BY_DICT
        for app, index, host, method, target, status, duration_s, client_ip, at in pending:
            # Formatted as bytes and decoded once: latin-1 maps each byte to one character,
            # so this is the text of the four fields decoded one by one, for less work.
            line = (_LINE % (host, method, target, status, duration_s, index, client_ip)).decode(
                "latin-1"
            )
            if by_dict:
                envelope = _new_object(Envelope)
                envelope.__dict__.update(app_id=app, source_type="RTR",
                                         source_instance=str(index), message_type="OUT",
                                         timestamp=at, message=line)
            else:
                envelope = Envelope(app, "RTR", str(index), "OUT", at, line)
            collect(envelope)
        # One call for the batch: the publisher takes its lock and wakes its sender once.
        self.sink.emit_many(envelopes)

    async def run(self) -> None:
        """Flush every FLUSH_INTERVAL_S until cancelled; then flush what is left."""
        try:
            while True:
                await asyncio.sleep(FLUSH_INTERVAL_S)
                self.flush()
        finally:
            self.flush()
