"""Route lookup cost: a Host header to its pool, in a table of 10,000 routes vs one of 10.

    python -m bench.router.lookup [--routes N]

The table is filled through the same change handlers the etcd informers call. The lookups mix
exact names (the common case), names with a port and upper case (normalised first) and
wildcard matches, and misses (404s).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time

import structlog

from lattice.models import (
    ActualLRP,
    ActualState,
    ModificationTag,
    PortMapping,
    Route,
    SchedulingInfo,
)
from lattice.store import Change, keys
from router.table import RouteTable

DOMAIN = "bench.localhost"


def fill(table: RouteTable, count: int) -> list[str]:
    """`count` apps with one RUNNING instance each (one in ten with a wildcard route)."""
    hosts = []
    for n in range(count):
        guid = f"app-{n}"
        host = f"*.wild-{n}.{DOMAIN}" if n % 10 == 5 else f"app-{n}.{DOMAIN}"
        hosts.append(host.replace("*", "www"))
        info = SchedulingInfo(
            process_guid=guid, instances=1, memory_mb=64, disk_mb=0, cpu_weight=100,
            routes=(Route((host,), 8080),), modification_tag=ModificationTag("bench"),
        )
        table.on_scheduling_change(
            Change(keys.scheduling(guid), None, json.dumps(info.to_dict()).encode())
        )
        actual = ActualLRP(
            process_guid=guid, index=0, instance_guid=f"{guid}-0", state=ActualState.RUNNING,
            since=0, cell_id="bench", address="127.0.0.1",
            ports=(PortMapping(8080, 20000 + n % 30000),),
        )
        table.on_actual_change(
            Change(keys.actual(guid, 0), None, json.dumps(actual.to_dict()).encode())
        )
    return hosts


def ns_per_lookup(table: RouteTable, queries: list[str]) -> float:
    lookup = table.lookup
    started = time.perf_counter_ns()
    for host in queries:
        lookup(host)
    return (time.perf_counter_ns() - started) / len(queries)


def compare(large: RouteTable, large_queries: list[str], small: RouteTable,
            small_queries: list[str], repeat: int = 15) -> tuple[float, float]:
    """Best of `repeat` for each table, measured in turn so that noise hits both alike."""
    big = one = float("inf")
    for _ in range(repeat):
        big = min(big, ns_per_lookup(large, large_queries))
        one = min(one, ns_per_lookup(small, small_queries))
    return big, one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--routes", type=int, default=10_000)
    args = parser.parse_args()
    # One route-registered event per route would drown the figures.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    rng = random.Random(1)
    small, large = RouteTable(), RouteTable()
    small_hosts = fill(small, 10)
    started = time.perf_counter()
    large_hosts = fill(large, args.routes)
    fill_s = time.perf_counter() - started
    exact = [h for h in large_hosts if not h.startswith("www.")]
    kinds = {
        "exact name": (
            [rng.choice(exact) for _ in range(50_000)], [small_hosts[0]] * 50_000),
        "Name:port, mixed case": (
            [rng.choice(exact).upper() + ":8080" for _ in range(50_000)],
            [small_hosts[0].upper() + ":8080"] * 50_000),
        "wildcard match": (
            [h for h in large_hosts if h.startswith("www.")] * 50,
            ["www.wild-5." + DOMAIN] * 50_000),
        "miss (404)": ([f"nope-{n}.{DOMAIN}" for n in range(50_000)],) * 2,
    }
    print(f"{args.routes} routes loaded through the change handlers in {fill_s:.2f} s")
    print(f"{'lookup':<24} {args.routes:>8} routes {'10 routes':>12}   ratio")
    for name, (large_queries, small_queries) in kinds.items():
        big, one = compare(large, large_queries, small, small_queries)
        print(f"{name:<24} {big:>10.0f} ns {one:>10.0f} ns   {big / one:5.2f}")


if __name__ == "__main__":
    main()
