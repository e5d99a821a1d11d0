"""A function task's output, from Docker's multiplexed attach stream. Pure.

stdout is kept as exact bytes up to a bound (it is the HTTP response); beyond it the run is
marked as overflowing and the rest is dropped. stderr is cut into lines for the log stream and
only its last bytes are kept, for the error an invocation answers with.
"""

from __future__ import annotations

from lattice.cell.log_frames import FrameDecoder
from lattice.models.function import MAX_STDOUT_BYTES, STDERR_TAIL_BYTES

STDOUT, STDERR, SYSTEM_ERROR = 1, 2, 3
MAX_LINE_BYTES = 16 * 1024      # a longer stderr "line" is logged in pieces


class OutputCapture:
    def __init__(self, *, stdout_limit: int = MAX_STDOUT_BYTES,
                 stderr_keep: int = STDERR_TAIL_BYTES) -> None:
        self._frames = FrameDecoder()
        self._stdout_limit = stdout_limit
        self._stderr_keep = stderr_keep
        self.stdout = bytearray()
        self.overflow = False
        self._stderr_tail = bytearray()
        self._line = bytearray()

    def feed(self, data: bytes) -> list[str]:
        """Take raw bytes of the stream; the stderr lines they complete."""
        lines: list[str] = []
        for stream, payload in self._frames.feed(data):
            if stream == STDOUT:
                room = self._stdout_limit - len(self.stdout)
                if len(payload) > room:
                    self.overflow = True
                self.stdout += payload[:max(room, 0)]
            elif stream in (STDERR, SYSTEM_ERROR):
                self._stderr_tail += payload
                del self._stderr_tail[:-self._stderr_keep]
                lines.extend(self._lines(payload))
        return lines

    def _lines(self, payload: bytes) -> list[str]:
        self._line += payload
        lines = []
        while (newline := self._line.find(b"\n")) >= 0 or len(self._line) > MAX_LINE_BYTES:
            end = newline if newline >= 0 else MAX_LINE_BYTES
            lines.append(_text(self._line[:end]))
            del self._line[:end + 1 if newline >= 0 else end]
        return lines

    def finish(self) -> list[str]:
        """The last stderr line if it had no newline."""
        lines = [_text(self._line)] if self._line else []
        self._line.clear()
        return lines

    @property
    def stderr_tail(self) -> bytes:
        return bytes(self._stderr_tail)


def _text(raw: bytes | bytearray) -> str:
    return bytes(raw).rstrip(b"\r").decode("utf-8", errors="replace")
