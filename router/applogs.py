"""RTR lines: one per request, to the app's log stream, formatted off the request's path.

The proxy only appends a tuple per request (`add`); `flush`, run every FLUSH_INTERVAL_S by
`run`, turns them into envelopes for the log publisher. Building the line and the envelope
costs more than the rest of a request's bookkeeping, and doing it in one batch keeps it out of
the request's latency. If lines pile up faster than they are flushed (the loop is saturated),
the newest beyond MAX_PENDING are dropped and counted: requests never wait for their logs.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from logagg.envelope import Envelope

FLUSH_INTERVAL_S = 0.05
MAX_PENDING = 20_000

# app, index, host, method, target, status, duration_s, client_ip, epoch_ns
Pending = tuple[str, int, bytes, bytes, bytes, int, float, bytes, int]


class LogSink(Protocol):
    """Where RTR lines go (logagg's LogPublisher); `emit` must never block."""

    def emit(self, envelope: Envelope) -> None: ...


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
            (app, index, host, method, target, status, duration_s, client_ip, time.time_ns())
        )

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        emit = self.sink.emit
        for app, index, host, method, target, status, duration_s, client_ip, at in pending:
            line = (
                f'{host.decode("latin-1")} - "{method.decode("latin-1")} '
                f'{target.decode("latin-1")}" {status} response_time:{duration_s:.6f} '
                f'app_index:{index} x_forwarded_for:"{client_ip.decode("latin-1")}"'
            )
            emit(Envelope(app, "RTR", str(index), "OUT", at, line))

    async def run(self) -> None:
        """Flush every FLUSH_INTERVAL_S until cancelled; then flush what is left."""
        try:
            while True:
                await asyncio.sleep(FLUSH_INTERVAL_S)
                self.flush()
        finally:
            self.flush()
