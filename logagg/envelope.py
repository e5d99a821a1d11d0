"""The envelope every log line travels in, from a cell to the aggregator to a subscriber."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Literal

from logagg.errors import InvalidEnvelope

MessageType = Literal["OUT", "ERR"]
SOURCE_TYPES = frozenset({"APP", "HEALTH", "CELL", "RTR", "STG", "LGR"})


@dataclass(frozen=True)
class Envelope:
    app_id: str               # the process_guid
    source_type: str          # APP, HEALTH, CELL, RTR, STG, LGR, or a component name
    source_instance: str      # the instance index, as text ("0"), or "" when none applies
    message_type: MessageType
    timestamp: int            # ns since the epoch, when the line was written
    message: str

    def to_dict(self) -> dict[str, Any]:
        # Field by field rather than dataclasses.asdict, which deep-copies each value through a
        # recursive walk: this runs for every line the router and the cells publish.
        return {
            "app_id": self.app_id,
            "source_type": self.source_type,
            "source_instance": self.source_instance,
            "message_type": self.message_type,
            "timestamp": self.timestamp,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Envelope:
        message_type = data["message_type"]
        if message_type not in ("OUT", "ERR"):
            raise ValueError(f"message_type must be OUT or ERR, got {message_type!r}")
        return cls(
            app_id=str(data["app_id"]),
            source_type=str(data["source_type"]),
            source_instance=str(data.get("source_instance", "")),
            message_type=message_type,
            timestamp=int(data["timestamp"]),
            message=str(data["message"]),
        )

    @classmethod
    def now(cls, app_id: str, source_type: str, source_instance: str, message: str,
            message_type: MessageType = "OUT") -> Envelope:
        return cls(app_id, source_type, source_instance, message_type, time.time_ns(), message)


# -- helpers shared by the aggregator, the publisher and the client ----------------------------

# Loggregator's limit: a longer line travels as several envelopes, each at most this long.
MAX_MESSAGE_BYTES = 4096


def split_message(message: str, max_bytes: int = MAX_MESSAGE_BYTES) -> list[str]:
    """`message` cut into pieces of at most `max_bytes` UTF-8 bytes, never inside a character.

    Joined back in order, the pieces are the message. An empty message is one empty piece.
    """
    if max_bytes < 4:
        raise ValueError(f"max_bytes must leave room for any character (4), got {max_bytes}")
    encoded = message.encode("utf-8", errors="surrogatepass")
    if len(encoded) <= max_bytes:
        return [message]
    pieces: list[str] = []
    start = 0
    while start < len(encoded):
        end = min(start + max_bytes, len(encoded))
        # Back up over continuation bytes (10xxxxxx) so that a character stays whole.
        while end < len(encoded) and (encoded[end] & 0xC0) == 0x80:
            end -= 1
        pieces.append(encoded[start:end].decode("utf-8", errors="surrogatepass"))
        start = end
    return pieces


# The same rule as a process_guid (the app id is one), so that a URL path segment is safe.
APP_ID_PATTERN = re.compile(r"[a-zA-Z0-9_-]+")
DROPPED_SOURCE_TYPE = "LGR"


def app_id_problem(app_id: object) -> str | None:
    """Why `app_id` is not a valid app id, or None when it is."""
    if not isinstance(app_id, str) or not app_id:
        return "must be a non-empty string"
    if APP_ID_PATTERN.fullmatch(app_id) is None:
        return f"must match [a-zA-Z0-9_-]+, got {app_id!r}"
    return None


def parse_envelope(data: object) -> Envelope:
    """An Envelope from decoded JSON, or InvalidEnvelope naming every bad field at once.

    Stricter than `Envelope.from_dict`, which converts whatever it is given: the aggregator
    takes its input from the network and must not store a number where a string belongs.
    """
    if type(data) is dict:
        # The aggregator parses every line it ingests: a valid envelope (nearly all of them)
        # passes these exact-type checks once and is built as is; anything else goes on to
        # the checks below, which name each problem. json.loads makes exact str and int (and
        # bool, which `type(...) is int` leaves to the checks below).
        app_id = data.get("app_id")
        source_type = data.get("source_type")
        source_instance = data.get("source_instance", "")
        message_type = data.get("message_type")
        timestamp = data.get("timestamp")
        message = data.get("message")
        if (type(app_id) is str and APP_ID_PATTERN.fullmatch(app_id) is not None
                and type(source_type) is str and source_type
                and type(source_instance) is str
                and (message_type == "OUT" or message_type == "ERR")
                and type(timestamp) is int and timestamp >= 0
                and type(message) is str):
            return Envelope(app_id, source_type, source_instance, message_type, timestamp,
                            message)
    return _parse_checked(data)


def _parse_checked(data: object) -> Envelope:
    if not isinstance(data, dict):
        raise InvalidEnvelope(f"an envelope must be a JSON object, got {type(data).__name__}")
    problems: list[str] = []
    app_problem = app_id_problem(data.get("app_id"))
    if app_problem is not None:
        problems.append(f"app_id: {app_problem}")
    source_type = data.get("source_type")
    if not isinstance(source_type, str) or not source_type:
        problems.append("source_type: must be a non-empty string")
    source_instance = data.get("source_instance", "")
    if not isinstance(source_instance, str):
        problems.append("source_instance: must be a string")
    message_type = data.get("message_type")
    if message_type not in ("OUT", "ERR"):
        problems.append(f"message_type: must be OUT or ERR, got {message_type!r}")
    timestamp = data.get("timestamp")
    # bool is an int in Python, but `true` is not a timestamp.
    if not isinstance(timestamp, int) or isinstance(timestamp, bool) or timestamp < 0:
        problems.append("timestamp: must be a non-negative integer (ns since the epoch)")
    if not isinstance(data.get("message"), str):
        problems.append("message: must be a string")
    if problems:
        raise InvalidEnvelope("; ".join(problems))
    return Envelope.from_dict(data)


def dropped_notice(app_id: str, count: int) -> Envelope:
    """The one line that stands for `count` lines of `app_id` dropped on the way (never silent)."""
    return Envelope(
        app_id=app_id,
        source_type=DROPPED_SOURCE_TYPE,
        source_instance="",
        message_type="ERR",
        timestamp=time.time_ns(),
        message=f"{count} messages dropped",
    )
