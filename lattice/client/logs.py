"""Tail an app's logs from the log aggregator, through the router at `doppler.<domain>`.

The WebSocket client itself is the log aggregator's (`logagg.client.tail`); this module only
points it at the target and translates its errors into the client's hierarchy.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp

from lattice.client.errors import LogStreamFailed
from lattice.client.target import Target
from logagg.client import tail
from logagg.envelope import Envelope
from logagg.errors import LogStreamError


async def tail_logs(
    session: aiohttp.ClientSession, target: Target, app: str
) -> AsyncIterator[Envelope]:
    """Live log lines of `app`, until the stream ends or breaks (LogStreamFailed).

    The session resolves `doppler.<domain>` to the router itself, so the URL carries the real
    name and no Host override is needed.
    """
    try:
        async for envelope in tail(session, target.doppler_url, app):
            yield envelope
    except LogStreamError as exc:
        raise LogStreamFailed(str(exc) or type(exc).__name__) from exc
