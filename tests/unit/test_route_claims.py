"""The retry loop of route claims (brain/route_claims.py), on owners and writes held in memory:
the etcd side is tested in tests/integration/test_route_claims.py."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from lattice.brain import route_claims
from lattice.brain.errors import InvalidRequest, ModificationConflict
from lattice.brain.route_claims import RouteOwners
from lattice.models import FieldError
from lattice.store import ModRevisionIs, Put, keys


class Store:
    """Owners at a revision; a write lands only at the current one, like the etcd guard."""

    def __init__(self, revision: int, taken: set[str]) -> None:
        self.revision = revision
        self.taken = set(taken)
        self.reads = 0
        self.writes: list[int] = []
        self.before_write: list[set[str]] = []   # claims that land just before each write

    async def read(self) -> RouteOwners:
        self.reads += 1
        return RouteOwners(revision=self.revision, function_names=tuple(sorted(self.taken)))

    def writer(self, name: str, *, fails_anyway: bool = False
               ) -> Callable[[int], Awaitable[bool]]:
        async def write(revision: int) -> bool:
            self.writes.append(revision)
            if self.before_write:
                self.taken |= self.before_write.pop(0)
                self.revision += 1
            if fails_anyway or revision != self.revision:
                return False
            self.taken.add(name)
            self.revision += 1
            return True
        return write


def check_free(name: str) -> Callable[[RouteOwners], list[FieldError]]:
    def check(owners: RouteOwners) -> list[FieldError]:
        if name in owners.function_names:
            return [FieldError("name", f"{name} is taken")]
        return []
    return check


async def test_a_free_route_is_written_at_the_revision_read() -> None:
    store = Store(7, set())
    assert await route_claims.claim(store.read, check=check_free("a"),
                                    write=store.writer("a"), what="x")
    assert store.writes == [7]
    assert store.taken == {"a"}


async def test_a_write_that_lost_to_another_claim_is_checked_again_and_refused() -> None:
    store = Store(3, set())
    store.before_write = [{"a"}]         # another request claims the same name first
    with pytest.raises(InvalidRequest) as refused:
        await route_claims.claim(store.read, check=check_free("a"),
                                 write=store.writer("a"), what="function")
    assert refused.value.to_dict()["error"]["fields"] == [
        {"field": "name", "message": "a is taken"}]
    assert store.writes == [3]


async def test_a_write_that_lost_to_an_unrelated_claim_is_tried_again() -> None:
    store = Store(3, set())
    store.before_write = [{"b"}, {"c"}]
    assert await route_claims.claim(store.read, check=check_free("a"),
                                    write=store.writer("a"), what="x")
    assert store.writes == [3, 4, 5]
    assert store.taken == {"a", "b", "c"}


async def test_a_failure_of_the_write_itself_is_false_not_a_retry() -> None:
    store = Store(3, set())
    assert not await route_claims.claim(store.read, check=check_free("a"),
                                        write=store.writer("a", fails_anyway=True), what="x")
    assert store.writes == [3]


async def test_owners_the_caller_read_are_used_without_reading_again() -> None:
    store = Store(9, set())
    owners = await store.read()
    assert await route_claims.claim(store.read, check=check_free("a"),
                                    write=store.writer("a"), what="x", owners=owners)
    assert store.reads == 1


async def test_losing_past_the_timeout_is_a_modification_conflict(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(route_claims, "CLAIM_TIMEOUT_S", 0.0)
    store = Store(1, set())
    store.before_write = [{f"other{i}"} for i in range(100)]
    with pytest.raises(ModificationConflict):
        await route_claims.claim(store.read, check=check_free("a"),
                                 write=store.writer("a"), what="x")


def test_the_guard_compares_and_bumps_the_claims_key() -> None:
    compare, ops = route_claims.guard(42)
    assert compare == [ModRevisionIs(keys.ROUTE_CLAIMS_VERSION, 42)]
    assert ops == [Put(keys.ROUTE_CLAIMS_VERSION, b"")]


def test_function_routes_are_their_names_under_the_domain() -> None:
    owners = RouteOwners(revision=0, function_names=("Echo", "b"))
    assert owners.function_routes("box.localhost") == {
        "echo.box.localhost": "Echo", "b.box.localhost": "b"}
