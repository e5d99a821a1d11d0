"""How fast an etcd change reaches the route table: RUNNING -> routable, stopped -> unroutable.

    python -m bench.router.propagation [--changes 100]

A router (in this process, on uvloop) watches a real etcd. Each change is timed from just
before the put to the moment `lookup` shows it, polled every 0.5 ms. The reference is the put's
own round trip in the same run. The goal (issue 4) is p99 <= 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import time
from collections.abc import Callable

import structlog
import uvloop

from bench.router.fixtures import etcd as running_etcd
from lattice.models import (
    ActualLRP,
    ActualState,
    ModificationTag,
    PortMapping,
    Route,
    SchedulingInfo,
)
from lattice.store import Etcd, keys
from router import RouterConfig, RouterServer

HOST = "prop.bench.localhost"
POLL_S = 0.0005


def _actual(index: int, state: ActualState) -> bytes:
    lrp = ActualLRP(process_guid="prop", index=index, instance_guid=f"prop-{index}",
                    state=state, since=time.time_ns(), cell_id="bench", address="127.0.0.1",
                    ports=(PortMapping(8080, 20000 + index),))
    return json.dumps(lrp.to_dict()).encode()


async def _until(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.perf_counter() + timeout_s
    while not check():
        if time.perf_counter() > deadline:
            raise TimeoutError("the change did not reach the route table")
        await asyncio.sleep(POLL_S)


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def measure(endpoint: str, changes: int) -> None:
    etcd = Etcd(endpoint)
    router = RouterServer(RouterConfig(etcd_endpoints=endpoint, port=0))
    try:
        info = SchedulingInfo("prop", 1, 64, 0, 100, (Route((HOST,), 8080),),
                              ModificationTag("bench"))
        await etcd.put(keys.scheduling("prop"), json.dumps(info.to_dict()).encode())
        await router.start()

        def count() -> int:
            pool = router.table.lookup(HOST)
            return 0 if pool is None else len(pool.endpoints)

        up, down, puts = [], [], []
        for n in range(changes):
            started = time.perf_counter()
            await etcd.put(keys.actual("prop", 0), _actual(0, ActualState.RUNNING))
            puts.append(time.perf_counter() - started)
            await _until(lambda: count() == 1)
            up.append(time.perf_counter() - started)
            started = time.perf_counter()
            await etcd.put(keys.actual("prop", 0), _actual(0, ActualState.CRASHED))
            await _until(lambda: count() == 0)
            down.append(time.perf_counter() - started)
            if n % 25 == 24:
                print(f"  {n + 1} changes of each kind", flush=True)
        for name, values in (("RUNNING -> routable", up), ("stopped -> unroutable", down),
                             ("etcd put round trip (reference)", puts)):
            mean_ms = statistics.mean(values) * 1000
            print(f"{name:<34} p50 {_ms(values, 0.5):6.1f} ms   p99 {_ms(values, 0.99):6.1f} ms"
                  f"   max {max(values) * 1000:6.1f} ms   mean {mean_ms:.1f} ms")
    finally:
        await router.stop()
        await etcd.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--changes", type=int, default=100)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with running_etcd() as endpoint:
        uvloop.run(measure(endpoint, args.changes))


if __name__ == "__main__":
    main()
