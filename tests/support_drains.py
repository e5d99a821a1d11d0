"""A real syslog listener for the drain tests: an asyncio TCP server on 127.0.0.1 that parses
octet-counted RFC 5424 messages, and can go away and come back on the same port."""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass

from logagg.drain_format import split_frames

RFC5424 = re.compile(
    r"^<(?P<pri>\d{1,3})>1 (?P<timestamp>\S+) (?P<hostname>\S+) (?P<app_name>\S+) "
    r"(?P<procid>\S+) (?P<msgid>\S+) (?P<sd>\S+) (?P<msg>.*)\n$", re.DOTALL)


@dataclass(frozen=True)
class SyslogMessage:
    pri: int
    timestamp: str
    hostname: str
    app_name: str
    procid: str
    msg: str

    @classmethod
    def parse(cls, raw: bytes) -> SyslogMessage:
        match = RFC5424.match(raw.decode("utf-8"))
        if match is None:
            raise AssertionError(f"not an RFC 5424 message: {raw[:200]!r}")
        return cls(int(match["pri"]), match["timestamp"], match["hostname"], match["app_name"],
                   match["procid"], match["msg"])


class SyslogListener:
    """Collects every message received; `stop()` closes the port and every connection."""

    def __init__(self, *, read: bool = True) -> None:
        self.messages: list[SyslogMessage] = []
        self.connections = 0            # accepted, over the lifetime
        self.open_connections = 0
        self.port = 0
        self._read = read               # False: accept, then never read (a stalled drain)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._released = asyncio.Event()     # set by stop(): a non-reading handler ends

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def lines(self) -> list[str]:
        return [m.msg for m in self.messages]

    async def start(self) -> None:
        # The same port again after a stop: a drain URL names one port.
        self._released.clear()
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port,
                                                  reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_connections += 1
        self._writers.add(writer)
        pending = b""
        try:
            if not self._read:
                await self._released.wait()
            while chunk := await reader.read(65536):
                frames, pending = split_frames(pending + chunk)
                self.messages.extend(SyslogMessage.parse(raw) for raw in frames)
        except ConnectionError:
            pass
        finally:
            self.open_connections -= 1
            self._writers.discard(writer)
            writer.close()

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._released.set()
        await wait_until_closed(self)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), 5)
        self._server = None


async def wait_until_closed(listener: SyslogListener, deadline_s: float = 10.0) -> None:
    """Until every handler of `listener` has ended (its connections are gone)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    while listener.open_connections:
        if loop.time() > deadline:
            raise AssertionError("the listener's connections did not close")
        await asyncio.sleep(0.01)
