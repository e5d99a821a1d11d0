"""Tail an app's logs from the log aggregator, through the router at `doppler.<domain>`.

The WebSocket client itself is the log aggregator's (`logagg.client.tail`); this module only
points it at the target and translates its errors into the client's hierarchy.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from typing import Protocol, cast

import aiohttp

from lattice.client.errors import LogStreamFailed
from lattice.client.target import Target
from logagg.envelope import Envelope


class _Tail(Protocol):
    def __call__(
        self, session: aiohttp.ClientSession, base_url: str, app_id: str, *, host: str | None = None
    ) -> AsyncIterator[Envelope]: ...


def _logagg_client() -> tuple[_Tail, type[Exception]]:
    # Imported by name because logagg.client is written in parallel with this module; its API
    # is the contract `tail(session, base_url, app_id, *, host=None)` raising LogStreamError.
    try:
        module = importlib.import_module("logagg.client")
    except ImportError as exc:
        raise LogStreamFailed(f"the log client is not installed ({exc})") from exc
    return cast(_Tail, module.tail), cast(type[Exception], module.LogStreamError)


async def tail_logs(
    session: aiohttp.ClientSession, target: Target, app: str
) -> AsyncIterator[Envelope]:
    """Live log lines of `app`, until the stream ends or breaks (LogStreamFailed)."""
    tail, stream_error = _logagg_client()
    try:
        async for envelope in tail(session, target.doppler_url, app):
            yield envelope
    except stream_error as exc:
        raise LogStreamFailed(str(exc) or type(exc).__name__) from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise LogStreamFailed(f"cannot reach {target.doppler_url}: {exc}") from exc
