"""structlog set-up, called once at each component's entry point.

Events are stable identifiers (`instance-crashed`, `converge-started`); context such as the
component, app, index and cell is bound with contextvars rather than repeated at every call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import Coroutine
from typing import Any

import structlog

# Keys whose values must never reach a log line, whatever component logs them.
SECRET_KEYS = frozenset({"password", "authorization", "credentials", "token", "secret"})


def _redact(_: object, __: str, event: structlog.types.EventDict) -> structlog.types.EventDict:
    for key in list(event):
        if key.lower() in SECRET_KEYS:
            event[key] = "[REDACTED]"
    return event


def configure(component: str, *, json: bool = False, level: int = logging.INFO) -> None:
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            DEBUG_FORWARDER,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(component=component)
    DEBUG_FORWARDER.component = component


# -- the box's own logs, forwarded to the log aggregator as app `lattice-debug` -----------------

DEBUG_APP_ID = "lattice-debug"
_WARNING_LEVELS = frozenset({"warning", "error", "critical", "exception"})


class DebugLogForwarder:
    """A structlog processor that also hands each event, redacted, to a log publisher.

    It runs after `_redact`, so a secret never reaches the aggregator either. Until `attach`
    (or after `detach`) it does nothing: a component logs the same with or without a box.
    """

    def __init__(self) -> None:
        self.component = ""
        self._sink: Any = None        # logagg.LogPublisher; Any keeps logagg out of this import

    def attach(self, sink: Any) -> None:
        self._sink = sink

    def detach(self) -> None:
        self._sink = None

    def __call__(self, _: object, method: str,
                 event: structlog.types.EventDict) -> structlog.types.EventDict:
        sink = self._sink
        if sink is not None:
            from logagg.envelope import Envelope

            level = str(event.get("level", method))
            text = json.dumps(event, default=str, separators=(",", ":"))
            sink.emit(Envelope.now(DEBUG_APP_ID, self.component or "lattice", "", text,
                                   "ERR" if level in _WARNING_LEVELS else "OUT"))
        return event


DEBUG_FORWARDER = DebugLogForwarder()


async def forwarding_debug_logs(etcd_endpoints: str, main: Coroutine[Any, Any, None],
                                credentials: Any = None) -> None:
    """Run `main` while this process's log events also go to the aggregator (lattice-debug)."""
    from lattice.store import Etcd
    from logagg.publisher import LogPublisher

    etcd = Etcd(etcd_endpoints)
    publisher = LogPublisher(etcd, backlog=2_000, credentials=credentials)
    sending = asyncio.create_task(publisher.run(), name="debug-log-publisher")
    DEBUG_FORWARDER.attach(publisher)
    try:
        await main
    finally:
        DEBUG_FORWARDER.detach()
        await publisher.flush(1.0)
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sending
        await etcd.close()
