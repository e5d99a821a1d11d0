"""Least-connections: the endpoint with the fewest requests in flight through this router.

Ties go round-robin from a random start, so idle endpoints share the load evenly and several
routers do not all pick the first. With equal loads it honours `Pool.next`'s contract (N calls
return each of N endpoints once); with unequal loads it deliberately does not.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from router.pool import Endpoint

_START_RANGE = 1 << 30


class InFlight:
    """Requests in flight per endpoint, counted by the proxy, shared by every pool's balancer."""

    __slots__ = ("_counts",)

    def __init__(self) -> None:
        # Keyed by `Endpoint.identity`: equal endpoints (rebuilt by a table change) share a
        # count, as with the endpoint as key, without a Python-level __hash__ per access.
        self._counts: dict[tuple[str, int, str, int, str], int] = {}

    def started(self, endpoint: Endpoint) -> None:
        counts = self._counts
        key = endpoint.identity
        counts[key] = counts.get(key, 0) + 1

    def ended(self, endpoint: Endpoint) -> None:
        counts = self._counts
        key = endpoint.identity
        count = counts.get(key, 0) - 1
        if count > 0:
            counts[key] = count
        else:
            counts.pop(key, None)    # endpoints come and go: keep the map small

    def of(self, endpoint: Endpoint) -> int:
        return self._counts.get(endpoint.identity, 0)

    def total(self) -> int:
        return sum(self._counts.values())


class LeastConnection:
    __slots__ = ("_cursor", "_in_flight")

    def __init__(self, in_flight: InFlight, rng: random.Random | None = None) -> None:
        self._in_flight = in_flight
        # Not security-relevant: only spreads ties.
        self._cursor = (rng or random).randrange(_START_RANGE)

    def pick(self, endpoints: Sequence[Endpoint]) -> Endpoint | None:
        count = len(endpoints)
        if count == 0:
            return None
        start = self._cursor % count
        self._cursor = start + 1
        of = self._in_flight.of
        best = endpoints[start]
        best_load = of(best)
        for step in range(1, count):
            if best_load == 0:
                break
            candidate = endpoints[(start + step) % count]
            load = of(candidate)
            if load < best_load:
                best, best_load = candidate, load
        return best
