"""Recent lines per app: a ring buffer each, so `ltc logs --recent` can show what happened.

Memory is bounded per app (the oldest line makes room for the newest), and across apps by
time: an app that wrote nothing for `idle_s` (an hour by default) is dropped by
`drop_idle`, which the server calls periodically.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from logagg.envelope import Envelope

DEFAULT_CAPACITY = 1000
DEFAULT_IDLE_S = 3600.0


class RecentLogs:
    def __init__(self, capacity: int = DEFAULT_CAPACITY, *, idle_s: float = DEFAULT_IDLE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if capacity < 1:
            raise ValueError(f"recent log capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.idle_s = idle_s
        self._clock = clock
        self._by_app: dict[str, deque[Envelope]] = {}
        self._last_seen: dict[str, float] = {}

    def append(self, envelope: Envelope) -> None:
        ring = self._by_app.get(envelope.app_id)
        if ring is None:
            ring = self._by_app[envelope.app_id] = deque(maxlen=self.capacity)
        ring.append(envelope)
        self._last_seen[envelope.app_id] = self._clock()

    def recent(self, app_id: str) -> list[Envelope]:
        """The app's last `capacity` lines, oldest first; empty for an app never seen."""
        return list(self._by_app.get(app_id, ()))

    def forget(self, app_id: str) -> None:
        self._by_app.pop(app_id, None)
        self._last_seen.pop(app_id, None)

    def drop_idle(self) -> list[str]:
        """Forget every app that wrote nothing for `idle_s`; the apps dropped."""
        cutoff = self._clock() - self.idle_s
        idle = [app for app, seen in self._last_seen.items() if seen <= cutoff]
        for app_id in idle:
            self.forget(app_id)
        return idle

    def apps(self) -> list[str]:
        return sorted(self._by_app)
