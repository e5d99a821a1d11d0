"""Docker's multiplexed log stream, decoded into timestamped stdout/stderr lines. Pure.

Without a TTY, Docker sends a container's output as frames:

    byte 0      stream: 1 stdout, 2 stderr (0 stdin and 3 system error are not expected here)
    bytes 1-3   zero
    bytes 4-7   payload length, big-endian uint32
    payload

With `timestamps=1` every log message starts with its RFC 3339 time (nanoseconds) and a space.
A message is one line with its newline, except that Docker splits lines longer than its
16 KiB buffer into several messages, each with its own timestamp and only the last with the
newline. HTTP chunking cuts the byte stream anywhere, even inside a frame header, so the
decoder buffers. docker-py's `logs()` throws the stream byte away (STYLE.md item 16), which is
why the cell parses the stream itself.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from lattice.cell.errors import DockerStreamError

Stream = Literal["stdout", "stderr"]

HEADER = struct.Struct(">BxxxL")
_STREAMS: dict[int, Stream] = {1: "stdout", 2: "stderr", 3: "stderr"}
_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$"
)


def parse_rfc3339_ns(text: str) -> int:
    """`2024-05-01T10:11:12.123456789Z` -> ns since the epoch, exactly (no float rounding)."""
    match = _RFC3339.match(text)
    if match is None:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    date, clock, fraction, offset = match.groups()
    offset = "+00:00" if offset in ("Z", "z") else offset
    seconds = int(datetime.fromisoformat(f"{date}T{clock}{offset}").timestamp())
    nanos = int((fraction or "")[:9].ljust(9, "0"))
    return seconds * 1_000_000_000 + nanos


@dataclass(frozen=True)
class LogLine:
    stream: Stream
    timestamp_ns: int
    text: str


class FrameDecoder:
    """Bytes in any chunking -> (stream byte, payload) frames."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buffer += data
        frames: list[tuple[int, bytes]] = []
        while len(self._buffer) >= HEADER.size:
            stream, length = HEADER.unpack_from(self._buffer)
            if stream not in (0, 1, 2, 3):
                raise DockerStreamError(
                    f"not a multiplexed log stream: frame header starts with byte {stream}"
                )
            end = HEADER.size + length
            if len(self._buffer) < end:
                break
            frames.append((stream, bytes(self._buffer[HEADER.size:end])))
            del self._buffer[:end]
        return frames

    @property
    def pending(self) -> int:
        """Bytes of an unfinished frame; non-zero at the end means the stream was cut."""
        return len(self._buffer)


class LineAssembler:
    """Frames -> whole lines per stream, each with the timestamp of its first piece."""

    def __init__(self, *, timestamps: bool = True) -> None:
        self._timestamps = timestamps
        self._pending: dict[Stream, tuple[int, bytearray]] = {}

    def _split_timestamp(self, payload: bytes) -> tuple[int, bytes]:
        if not self._timestamps:
            return 0, payload
        stamp, space, rest = payload.partition(b" ")
        try:
            if not space:
                raise ValueError("no space after the timestamp")
            return parse_rfc3339_ns(stamp.decode("ascii")), rest
        except (ValueError, UnicodeDecodeError) as exc:
            raise DockerStreamError(f"log message without a valid timestamp: {exc}") from exc

    def feed(self, stream_byte: int, payload: bytes) -> list[LogLine]:
        stream = _STREAMS.get(stream_byte)
        if stream is None:      # stdin is never sent back; nothing to do with it
            return []
        timestamp, rest = self._split_timestamp(payload)
        lines: list[LogLine] = []
        started, buffer = self._pending.pop(stream, (timestamp, bytearray()))
        buffer += rest
        while (newline := buffer.find(b"\n")) >= 0:
            lines.append(LogLine(stream, started, _text(buffer[:newline])))
            del buffer[:newline + 1]
            started = timestamp
        if buffer:
            self._pending[stream] = (started, buffer)
        return lines

    def flush(self) -> list[LogLine]:
        """Unfinished lines at the end of the stream (a last line without a newline)."""
        lines = [LogLine(s, ts, _text(buf)) for s, (ts, buf) in self._pending.items()]
        self._pending.clear()
        return sorted(lines, key=lambda line: line.timestamp_ns)


def _text(raw: bytes | bytearray) -> str:
    return bytes(raw).rstrip(b"\r").decode("utf-8", errors="replace")


class LogStreamParser:
    """The whole pipeline: raw bytes of `GET /containers/{id}/logs` -> LogLines."""

    def __init__(self, *, timestamps: bool = True) -> None:
        self._frames = FrameDecoder()
        self._lines = LineAssembler(timestamps=timestamps)

    def feed(self, data: bytes) -> list[LogLine]:
        lines: list[LogLine] = []
        for stream, payload in self._frames.feed(data):
            lines.extend(self._lines.feed(stream, payload))
        return lines

    def finish(self) -> list[LogLine]:
        return self._lines.flush()

    @property
    def truncated(self) -> bool:
        return self._frames.pending > 0
