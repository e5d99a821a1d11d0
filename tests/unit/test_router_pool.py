"""The contract of Pool.next() with the round-robin strategy."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from router.pool import Endpoint, Pool
from router.roundrobin import RoundRobin


def endpoint(i: int) -> Endpoint:
    return Endpoint("127.0.0.1", 9000 + i, "app", i, f"guid-{i}")


@pytest.mark.parametrize("seed", range(20))
def test_n_calls_return_each_of_n_endpoints_once(seed: int) -> None:
    endpoints = [endpoint(i) for i in range(5)]
    pool = Pool(endpoints, RoundRobin(random.Random(seed)))
    for _ in range(3):
        assert Counter(pool.next() for _ in range(5)) == Counter(endpoints)


@pytest.mark.parametrize("seed", range(20))
def test_a_removed_endpoint_is_never_returned(seed: int) -> None:
    pool = Pool([endpoint(i) for i in range(4)], RoundRobin(random.Random(seed)))
    for _ in range(seed % 4):
        pool.next()
    pool.remove(endpoint(2))
    picks = [pool.next() for _ in range(30)]
    assert endpoint(2) not in picks
    assert set(picks) == {endpoint(0), endpoint(1), endpoint(3)}


def test_replacing_the_set_keeps_only_the_new_endpoints() -> None:
    pool = Pool([endpoint(0), endpoint(1)])
    pool.replace([endpoint(1), endpoint(2)])
    assert {pool.next() for _ in range(10)} == {endpoint(1), endpoint(2)}


def test_an_empty_pool_returns_none() -> None:
    pool = Pool()
    assert pool.is_empty
    assert pool.next() is None
    pool.add(endpoint(0))
    pool.remove(endpoint(0))
    assert pool.next() is None


def test_duplicates_count_once() -> None:
    pool = Pool([endpoint(0), endpoint(0), endpoint(1)])
    pool.add(endpoint(1))
    assert pool.endpoints == (endpoint(0), endpoint(1))


def test_the_start_is_random_per_pool() -> None:
    endpoints = [endpoint(i) for i in range(8)]
    firsts = {Pool(endpoints, RoundRobin(random.Random(seed))).next() for seed in range(40)}
    assert len(firsts) > 1
