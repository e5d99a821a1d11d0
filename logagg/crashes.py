"""Crash logs: the last lines of every crashed instance, kept past its restart and its app.

Why here and not in etcd: the aggregator already sees every line, so keeping the last
CRASH_LINES per instance costs no extra write on the crash path and keeps etcd small (a crash
loop would otherwise write up to 50 x 4 KiB per crash). The price: an aggregator restart
forgets them (docs/architecture.md, "Decisions").

The cell marks a crash with one CELL line, `crash_notice()`, sent after the container's last
lines were drained; the aggregator then freezes that instance's tail with the exit status. A
record stays until an app of the same name is created again (`forget`).
"""

from __future__ import annotations

import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from logagg.envelope import Envelope, parse_envelope
from logagg.errors import InvalidEnvelope

CRASH_LINES = 50
CRASH_SOURCE_TYPE = "CELL"
_NOTICE = re.compile(r"^Crashed(?:, exit status (-?\d+))?: (.*)$", re.DOTALL)


def crash_notice(app_id: str, index: int, reason: str, exit_status: int | None) -> Envelope:
    """The CELL line that says an instance crashed, readable by users and by the aggregator."""
    status = "" if exit_status is None else f", exit status {exit_status}"
    return Envelope(app_id, CRASH_SOURCE_TYPE, str(index), "ERR", time.time_ns(),
                    f"Crashed{status}: {reason}")


def parse_crash_notice(envelope: Envelope) -> tuple[int | None, str] | None:
    """(exit status, reason) when `envelope` is a crash notice, else None."""
    if envelope.source_type != CRASH_SOURCE_TYPE or not envelope.source_instance:
        return None
    match = _NOTICE.match(envelope.message)
    if match is None:
        return None
    status, reason = match.groups()
    return (None if status is None else int(status)), reason


@dataclass(frozen=True)
class CrashRecord:
    app_id: str
    index: str
    exit_status: int | None
    reason: str
    crashed_at: int                      # ns, the notice's timestamp
    lines: tuple[Envelope, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "app_id": self.app_id,
            "index": int(self.index) if self.index.isdigit() else self.index,
            "exit_status": self.exit_status,
            "reason": self.reason,
            "crashed_at": self.crashed_at,
            "lines": [line.to_dict() for line in self.lines],
        }

    @classmethod
    def from_dict(cls, data: Any) -> CrashRecord:
        """The record `to_dict` made; InvalidEnvelope, KeyError or TypeError if it is not one."""
        if not isinstance(data, dict):
            raise InvalidEnvelope(f"a crash record must be an object, got {type(data).__name__}")
        exit_status = data["exit_status"]
        if exit_status is not None and (not isinstance(exit_status, int)
                                        or isinstance(exit_status, bool)):
            raise TypeError(f"exit_status must be an integer or null, got {exit_status!r}")
        lines = data["lines"]
        if not isinstance(lines, list):
            raise TypeError("lines must be an array")
        return cls(str(data["app_id"]), str(data["index"]), exit_status, str(data["reason"]),
                   int(data["crashed_at"]), tuple(parse_envelope(line) for line in lines))


class CrashLogs:
    """Per instance, its last lines while it runs and its last crash once it crashed."""

    def __init__(self, lines: int = CRASH_LINES) -> None:
        if lines < 1:
            raise ValueError(f"crash log length must be at least 1, got {lines}")
        self.lines = lines
        self._tails: dict[tuple[str, str], deque[Envelope]] = {}
        self._crashes: dict[str, dict[str, CrashRecord]] = {}

    def observe(self, envelope: Envelope) -> None:
        if not envelope.source_instance:
            return          # a line of no instance (an LGR notice, the box's own logs)
        notice = parse_crash_notice(envelope)
        key = (envelope.app_id, envelope.source_instance)
        if notice is None:
            tail = self._tails.get(key)
            if tail is None:
                tail = self._tails[key] = deque(maxlen=self.lines)
            tail.append(envelope)
            return
        exit_status, reason = notice
        # The restarted instance starts a fresh tail: its lines are not the crash's.
        tail = self._tails.pop(key, deque())
        self._crashes.setdefault(envelope.app_id, {})[envelope.source_instance] = CrashRecord(
            envelope.app_id, envelope.source_instance, exit_status, reason,
            envelope.timestamp, tuple(tail),
        )

    def crashes(self, app_id: str) -> list[CrashRecord]:
        """The last crash of each instance of `app_id` that crashed, by index."""
        records = self._crashes.get(app_id, {})
        return [records[i] for i in sorted(records, key=lambda i: (len(i), i))]

    def forget_tails(self, app_id: str) -> None:
        """Drop the running tails of an idle app; its crash records stay."""
        for key in [k for k in self._tails if k[0] == app_id]:
            del self._tails[key]

    def forget(self, app_id: str) -> None:
        """An app of this name was created again: its old crashes are not its own."""
        self.forget_tails(app_id)
        self._crashes.pop(app_id, None)
