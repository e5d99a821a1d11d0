"""structlog set-up, called once at each component's entry point.

Events are stable identifiers (`instance-crashed`, `converge-started`); context such as the
component, app, index and cell is bound with contextvars rather than repeated at every call.
"""

from __future__ import annotations

import logging
import sys

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
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(component=component)
