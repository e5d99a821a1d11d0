"""The port health check: does something in the container accept TCP on its published port?

The check dials the *published* host port on the cell's address, never the container's bridge
address. Behind a published port sits Docker's userland proxy (docker-proxy), which accepts
every connection itself and only then dials the container. Measured here: a connect succeeds
even when nothing listens in the container, and docker-proxy closes the connection about 1 ms
later. So a successful connect proves nothing; the check waits a short settle time after it:

    connect refused or timed out             fail (no proxy: the port is not published)
    EOF or reset within the settle time      fail (the proxy found nobody listening)
    still open, or data arrived              pass (the proxy reached a listener)
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class HealthSettings:
    starting_interval_s: float = 0.5     # until the first pass: become routable quickly
    healthy_interval_s: float = 30.0     # once passed: a failure from then on is a crash
    timeout_s: float = 1.0               # for the connect
    settle_s: float = 0.1                # ~100x docker-proxy's measured close after a refusal


async def port_is_open(host: str, port: int, *, timeout_s: float = 1.0,
                       settle_s: float = 0.1) -> bool:
    """One port check, as described in the module docstring."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except (OSError, TimeoutError):
        return False
    try:
        try:
            data = await asyncio.wait_for(reader.read(1), settle_s)
        except TimeoutError:
            return True           # nobody hung up: a listener is behind the proxy
        except ConnectionError:
            return False          # reset: the proxy could not reach a listener
        return data != b""        # a greeting passes; EOF is the proxy giving up
    finally:
        writer.close()
        # The peer may have reset the connection already; closing is then done.
        with contextlib.suppress(OSError):
            await writer.wait_closed()
