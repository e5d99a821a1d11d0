"""Endpoints whose dial failed, skipped for a cool-down period (gorouter's "failed" marks).

A refused or timed-out dial says the instance is probably gone before etcd says so; sending it
the next requests would cost each of them a failed attempt. If every endpoint a request could
use is marked, the marks are useless (and maybe stale): they are cleared and all are tried.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from router.pool import Endpoint

DEFAULT_COOLDOWN_S = 10.0


class CoolDown:
    __slots__ = ("_period_s", "_until")

    def __init__(self, period_s: float = DEFAULT_COOLDOWN_S) -> None:
        self._period_s = period_s
        self._until: dict[Endpoint, float] = {}

    def __bool__(self) -> bool:
        """True if any endpoint is marked: the proxy checks marks only then (hot path)."""
        return bool(self._until)

    def mark(self, endpoint: Endpoint, now: float) -> None:
        self._until[endpoint] = now + self._period_s

    def is_marked(self, endpoint: Endpoint, now: float) -> bool:
        until = self._until.get(endpoint)
        if until is None:
            return False
        if now >= until:
            del self._until[endpoint]
            return False
        return True

    def clear(self, endpoints: Iterable[Endpoint]) -> None:
        for endpoint in endpoints:
            self._until.pop(endpoint, None)

    def usable(self, endpoints: Iterable[Endpoint], now: float) -> list[Endpoint]:
        """`endpoints` without the marked ones; all of them, marks cleared, if all are marked."""
        candidates = list(endpoints)
        unmarked = [e for e in candidates if not self.is_marked(e, now)]
        if unmarked or not candidates:
            return unmarked
        self.clear(candidates)
        return candidates
