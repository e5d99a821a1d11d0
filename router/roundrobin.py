"""Round-robin: each endpoint in turn, starting at a random index.

The random start keeps many pools (and many routers) from all sending their first request to the
first instance of every app. The cursor is taken modulo the current number of endpoints, so
after the set changes it simply continues from where it points: no endpoint that left can be
returned, because only the current tuple is ever indexed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from router.pool import Endpoint

_START_RANGE = 1 << 30


class RoundRobin:
    __slots__ = ("_cursor",)

    def __init__(self, rng: random.Random | None = None) -> None:
        # Not security-relevant: only spreads the first requests of many pools.
        self._cursor = (rng or random).randrange(_START_RANGE)

    def pick(self, endpoints: Sequence[Endpoint]) -> Endpoint | None:
        count = len(endpoints)
        if count == 0:
            return None
        index = self._cursor % count
        self._cursor = index + 1
        return endpoints[index]
