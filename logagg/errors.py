"""Errors of the log aggregator package.

    LogaggError
    ├── InvalidEnvelope    data that is not a valid envelope; names every bad field
    │                      (the server logs it and skips that envelope, never crashes)
    └── LogStreamError     a subscriber could not get logs: the aggregator is unreachable,
                           refused the request (any answer but 101 / 200), or sent garbage
"""

from __future__ import annotations


class LogaggError(Exception):
    """Base of every error the log aggregator package raises."""


class InvalidEnvelope(LogaggError, ValueError):
    """A dict that does not describe an envelope; the message lists every bad field."""


class LogStreamError(LogaggError):
    """The client side (`tail`, `recent`) could not get the logs it asked for."""
