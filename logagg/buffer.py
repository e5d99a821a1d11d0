"""Recent lines per app: a ring buffer each, so `ltc logs` can show what happened just before.

Memory is bounded per app (the oldest line makes room for the newest), not across apps: an app
that is deleted keeps its last lines until `forget` is called or the aggregator restarts.
"""

from __future__ import annotations

from collections import deque

from logagg.envelope import Envelope


class RecentLogs:
    def __init__(self, capacity: int = 100) -> None:
        if capacity < 1:
            raise ValueError(f"recent log capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._by_app: dict[str, deque[Envelope]] = {}

    def append(self, envelope: Envelope) -> None:
        ring = self._by_app.get(envelope.app_id)
        if ring is None:
            ring = self._by_app[envelope.app_id] = deque(maxlen=self.capacity)
        ring.append(envelope)

    def recent(self, app_id: str) -> list[Envelope]:
        """The app's last `capacity` lines, oldest first; empty for an app never seen."""
        return list(self._by_app.get(app_id, ()))

    def forget(self, app_id: str) -> None:
        self._by_app.pop(app_id, None)

    def apps(self) -> list[str]:
        return sorted(self._by_app)
