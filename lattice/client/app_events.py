"""Wake-ups for ltc's waits: the brain's `GET /v1/events` stream, read for one app.

The brain reports every ActualLRP change as a server-sent event (lattice/brain/events.py) within
milliseconds of its etcd write, so a wait that fetches its instances again on each event sees
the last one turn RUNNING at once, where a 50 ms poll saw it 25 ms late on average.

The events are only a hint that something changed: the wait still reads the instances from
the API and judges them (app_runner.assess), and still polls, slowly while the stream is up and
at the usual pace once it is not (the brain drops a slow subscriber; a proxy may buffer).

The stream asks for the app's events only (`?process_guid=APP`): the brain sends none of the
other apps' and tasks' events, so a busy box costs the wait nothing. A daemon thread reads the
stream with plain_http.py (no aiohttp or http.client to import, no task on the event loop) and
still marks only the events whose line names the app, so a brain that ignored the filter would
only cost reads; `close()` shuts the socket, so the thread ends at once.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from lattice.client.api_transport import CONNECT_TIMEOUT_S, Endpoint, http_connection

if TYPE_CHECKING:
    import asyncio

EVENTS_PATH = "/v1/events"
FILTER_PARAMETER = "process_guid"
# The brain sends a heartbeat every 15 s; a stream silent for longer than this is dead.
READ_TIMEOUT_S = 45.0
# How long a wait gives the stream to open before it polls without it.
EVENTS_START_TIMEOUT_S = 1.0


class AppEvents:
    """Changes to one app's instances, as reported by the brain's event stream.

    Usable from plain threads (`start_blocking`, `next_blocking`: `ltc create` runs without an
    event loop) and from a coroutine (`start`, `next`).
    """

    def __init__(self, base_url: str, app: str, headers: Mapping[str, str] | None = None) -> None:
        parts = urlsplit(base_url.rstrip("/") + EVENTS_PATH)
        if not parts.hostname:
            raise ValueError(f"not an http URL: {base_url!r}")
        self._endpoint = Endpoint.of(parts.hostname, parts.port or 80)
        self._netloc = parts.netloc
        self._path = f"{parts.path}?{FILTER_PARAMETER}={quote(app, safe='')}"
        self._headers = dict(headers or {})
        # Records are JSON: the app's name appears quoted in every event about it. Another
        # field with the same text only costs one needless fetch.
        self._marker = f'"{app}"'.encode()
        self._changed = threading.Event()
        self._subscribed = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed_async: asyncio.Event | None = None
        self._sock: socket.socket | None = None
        self._closing = False
        self.alive = False
        self._thread = threading.Thread(target=self._read, name="ltc-events", daemon=True)

    def open(self) -> None:
        """Start opening the stream (`wait_subscribed` waits for it)."""
        self._thread.start()

    def wait_subscribed(self, timeout_s: float) -> None:
        """Wait (at most `timeout_s`) until the brain has subscribed us, or the stream failed."""
        self._subscribed.wait(timeout_s)

    def start_blocking(self, timeout_s: float) -> None:
        """Open the stream and wait (at most `timeout_s`) until the brain has subscribed us."""
        self.open()
        self.wait_subscribed(timeout_s)

    def next_blocking(self, timeout_s: float) -> None:
        """Return when a change to the app was reported since the last call, or after
        `timeout_s` without one."""
        self._changed.wait(timeout_s)
        self._changed.clear()

    async def start(self, timeout_s: float) -> None:
        import asyncio  # here, not at the top: `ltc create` runs without it (see ltc.py)

        self._loop = asyncio.get_running_loop()
        self._changed_async = asyncio.Event()
        await asyncio.to_thread(self.start_blocking, timeout_s)

    async def next(self, timeout_s: float) -> None:
        import asyncio

        assert self._changed_async is not None, "start() first"
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed_async.wait(), timeout_s)
        self._changed_async.clear()

    def close(self) -> None:
        self._closing = True
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._thread.is_alive():
            # A daemon: one still connecting (close cannot interrupt that) is not waited for.
            self._thread.join(timeout=0.1)

    # -- the reading thread ---------------------------------------------------------------------

    def _wake(self) -> None:
        self._changed.set()
        if self._loop is not None and self._changed_async is not None:
            with contextlib.suppress(RuntimeError):     # the loop is closed: nobody waits
                self._loop.call_soon_threadsafe(self._changed_async.set)

    def _read(self) -> None:
        connection = http_connection(self._endpoint, CONNECT_TIMEOUT_S)
        try:
            connection.connect()
            self._sock = connection.sock
            if self._closing:
                return
            response = connection.request("GET", self._path, {
                **self._headers, "Host": self._netloc, "Accept": "text/event-stream"})
            if response.status != 200:
                return
            assert connection.sock is not None   # connect() either set it or raised
            connection.sock.settimeout(READ_TIMEOUT_S)
            self.alive = True
            self._subscribed.set()
            for line in connection.lines(response):
                if self._closing:
                    break
                if self._marker in line:
                    self._wake()
        except OSError:     # plain_http's failures are OSErrors too
            pass    # no stream, or it ended: the waiter polls at the usual pace
        finally:
            self.alive = False
            self._subscribed.set()
            self._wake()     # so the waiter notices at once and polls faster
            connection.close()
