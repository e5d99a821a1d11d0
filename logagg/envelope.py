"""The envelope every log line travels in, from a cell to the aggregator to a subscriber."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Literal

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
        return asdict(self)

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
