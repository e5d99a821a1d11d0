"""The endpoints of one route, and the tiny contract of whatever picks among them.

The contract of `Pool.next()` (gorouter's route/pool.go documents the same for `Next()`):

- with an unchanged set of N endpoints, N consecutive calls return each endpoint once;
- it never returns an endpoint that has been removed from the pool;
- it returns None when the pool is empty.

*How* the next endpoint is chosen is a `Balancer`'s business, one strategy per module
(`roundrobin.py`); the pool only holds the current set and hands it to the balancer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from router.roundrobin import RoundRobin


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One place a route's requests can go: an app instance, or a box service (process_guid "")."""

    address: str
    port: int
    process_guid: str
    index: int
    instance_guid: str
    # The X-CF-* request header lines for this endpoint, built once instead of per request.
    app_headers: bytes = field(init=False, repr=False, compare=False)
    # The compared fields as a tuple: a dict keyed by it hashes in C, where the dataclass's
    # __hash__ is a Python call (the in-flight counts use it twice per request).
    identity: tuple[str, int, str, int, str] = field(init=False, repr=False, compare=False)
    # Where the connection pool keeps idle connections: one pool per address and port.
    address_key: tuple[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lines = (
            b"X-CF-ApplicationID: %s\r\nX-CF-InstanceID: %s\r\n"
            % (self.process_guid.encode(), self.instance_guid.encode())
            if self.process_guid
            else b""
        )
        object.__setattr__(self, "app_headers", lines)
        object.__setattr__(
            self,
            "identity",
            (self.address, self.port, self.process_guid, self.index, self.instance_guid),
        )
        object.__setattr__(self, "address_key", (self.address, self.port))

    def __str__(self) -> str:
        return f"{self.address}:{self.port}"


class Balancer(Protocol):
    def pick(self, endpoints: Sequence[Endpoint]) -> Endpoint | None:
        """One of `endpoints` (None if it is empty), honouring the contract of `Pool.next`."""
        ...


class Pool:
    """The endpoints of one route. Reads are lock-free: the set is an immutable tuple, replaced
    whole on every change, so a request never sees a half-updated pool."""

    __slots__ = ("_balancer", "_endpoints", "scalable")

    def __init__(
        self, endpoints: Iterable[Endpoint] = (), balancer: Balancer | None = None
    ) -> None:
        self._endpoints: tuple[Endpoint, ...] = _unique(endpoints)
        self._balancer: Balancer = balancer if balancer is not None else RoundRobin()
        # The apps of this route that scale to zero (router/activation.py): a request finding
        # the pool empty is held while one of them starts. Empty for most pools: one check.
        self.scalable: tuple[str, ...] = ()

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        return self._endpoints

    @property
    def is_empty(self) -> bool:
        return not self._endpoints

    def next(self) -> Endpoint | None:
        return self._balancer.pick(self._endpoints)

    def next_of(self, candidates: Sequence[Endpoint]) -> Endpoint | None:
        """The balancer's choice among `candidates`, a subset of the endpoints (a retry, or
        some endpoints cooling down)."""
        return self._balancer.pick(candidates)

    def replace(self, endpoints: Iterable[Endpoint]) -> None:
        self._endpoints = _unique(endpoints)

    def add(self, endpoint: Endpoint) -> None:
        if endpoint not in self._endpoints:
            self._endpoints = (*self._endpoints, endpoint)

    def remove(self, endpoint: Endpoint) -> None:
        self._endpoints = tuple(e for e in self._endpoints if e != endpoint)

    def __repr__(self) -> str:
        return f"Pool({', '.join(str(e) for e in self._endpoints)})"


def _unique(endpoints: Iterable[Endpoint]) -> tuple[Endpoint, ...]:
    # dict keeps the first occurrence's order: a duplicate would get twice the traffic.
    return tuple(dict.fromkeys(endpoints))
