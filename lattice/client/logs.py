"""An app's logs from the log aggregator, through the router at `doppler.<domain>`.

The clients themselves are the log aggregator's (`logagg.client`); this module only points
them at the target and translates their errors into the client's hierarchy.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp

from lattice.client.errors import LogStreamFailed
from lattice.client.target import Target
from logagg.client import crashes, recent, tail
from logagg.crashes import CrashRecord
from logagg.envelope import Envelope
from logagg.errors import LogStreamError

DEBUG_APP_ID = "lattice-debug"   # the box's own components log under this app id


async def tail_logs(
    session: aiohttp.ClientSession, target: Target, app: str, *, with_recent: bool = False
) -> AsyncIterator[Envelope]:
    """Live log lines of `app` (after its recent ones, `with_recent`), until the stream ends
    or breaks (LogStreamFailed).

    The session resolves `doppler.<domain>` to the router itself, so the URL carries the real
    name and no Host override is needed.
    """
    try:
        async for envelope in tail(session, target.doppler_url, app, with_recent=with_recent):
            yield envelope
    except LogStreamError as exc:
        raise LogStreamFailed(str(exc) or type(exc).__name__) from exc


async def recent_logs(session: aiohttp.ClientSession, target: Target, app: str) -> list[Envelope]:
    """The app's recent lines, oldest first."""
    try:
        return await recent(session, target.doppler_url, app)
    except LogStreamError as exc:
        raise LogStreamFailed(str(exc) or type(exc).__name__) from exc


async def crash_logs(session: aiohttp.ClientSession, target: Target,
                     app: str) -> list[CrashRecord]:
    """The last crash of each crashed instance of `app`, kept by the log aggregator."""
    try:
        return await crashes(session, target.doppler_url, app)
    except LogStreamError as exc:
        raise LogStreamFailed(str(exc) or type(exc).__name__) from exc
