"""Router vs nginx: requests/s and latency through each, to the same two nginx backends.

    python -m bench.router.throughput [--rounds N] [--duration S] [--no-workers-2] [--logagg]

wrk (1 thread, 32 connections) runs on one core, the proxy under test on the other; the
backends share wrk's core, so the proxy has a core to itself. Each round measures every
target once, in turn, so that noise from other work on the machine spreads over all of them;
the best round of each is reported (the least disturbed), and the ratios are taken from those.

Without --logagg no log aggregator runs: the router still formats an RTR line per request and
hands it to its log publisher, which keeps the newest 10,000 and drops the rest.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from contextlib import ExitStack

from bench.router import fixtures
from bench.router.backend_image import build_backend_image
from bench.router.wrk import WrkResult, run_wrk

LOAD_CPU = 0      # wrk and the backends
PROXY_CPU = 1     # the router or nginx


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--no-workers-2", dest="workers_2", action="store_false",
                        help="skip the router with --workers 2 (on both cores)")
    parser.add_argument("--logagg", action="store_true",
                        help="run a log aggregator (on wrk's core), so that the routers "
                             "publish their RTR lines rather than queue and drop them")
    args = parser.parse_args()

    build_backend_image()
    with ExitStack() as stack:
        ports = stack.enter_context(fixtures.backends(2, cpu=LOAD_CPU))
        endpoint = stack.enter_context(fixtures.etcd())
        fixtures.register_app(endpoint, ports)
        if args.logagg:
            stack.enter_context(fixtures.logagg(endpoint, cpu=LOAD_CPU))
        router_port, router_pid = stack.enter_context(
            fixtures.router(endpoint, cpus=str(PROXY_CPU)))
        nginx_port, nginx_pid = stack.enter_context(fixtures.nginx_proxy(ports, cpu=PROXY_CPU))

        def through(port: int, pid: int | None, host: str | None = fixtures.APP_HOST) -> WrkResult:
            before = fixtures.tree_cpu_s(pid) if pid is not None else 0.0
            result = run_wrk(f"http://127.0.0.1:{port}/", host=host, cpu=LOAD_CPU,
                             duration_s=args.duration)
            if pid is None or not result.requests:
                return result
            cpu_us = (fixtures.tree_cpu_s(pid) - before) / result.requests * 1e6
            return dataclasses.replace(result, proxy_cpu_us=cpu_us)

        targets: dict[str, Callable[[], WrkResult]] = {
            "direct to one backend": lambda: through(ports[0], None, None),
            "nginx (1 worker)": lambda: through(nginx_port, nginx_pid),
            "router (1 worker)": lambda: through(router_port, router_pid),
        }
        if args.workers_2:
            # Two workers need both cores: they share them with wrk and the backends, as
            # nginx with 2 workers would.
            port_2, pid_2 = stack.enter_context(
                fixtures.router(endpoint, cpus=f"{LOAD_CPU},{PROXY_CPU}", workers=2)
            )
            targets["router (2 workers)"] = lambda: through(port_2, pid_2)
        best: dict[str, WrkResult] = {}
        cpu_runs: dict[str, list[WrkResult]] = {}
        for round_ in range(1, args.rounds + 1):
            print(f"round {round_}/{args.rounds}")
            for name, measure in targets.items():
                result = measure()
                print("  " + result.row(name), flush=True)
                cpu_runs.setdefault(name, []).append(result)
                if name not in best or result.requests_per_s > best[name].requests_per_s:
                    best[name] = result
    print("\nbest of each:")
    for name, result in best.items():
        print("  " + result.row(name))
    nginx = best["nginx (1 worker)"].requests_per_s
    router_1 = best["router (1 worker)"].requests_per_s
    print(f"\nratio router/nginx (1 worker):   {router_1 / nginx:.2f}   (goal >= 0.5)")
    if "router (2 workers)" in best:
        print(f"ratio router/nginx (2 workers):  "
              f"{best['router (2 workers)'].requests_per_s / nginx:.2f}")
    direct = best["direct to one backend"].requests_per_s
    print(f"ratio nginx/direct:              {nginx / direct:.2f}")
    # Throughput on a shared, busy machine swings with other load; CPU time per request does
    # much less, and on a dedicated core it bounds throughput at 1 / cpu-per-request.
    cpu_nginx = min(r.proxy_cpu_us for r in cpu_runs["nginx (1 worker)"])
    cpu_router = min(r.proxy_cpu_us for r in cpu_runs["router (1 worker)"])
    print(f"CPU per request: nginx {cpu_nginx:.1f} us, router {cpu_router:.1f} us;"
          f" ratio nginx/router {cpu_nginx / cpu_router:.2f} (the throughput ratio on an idle"
          " core)")


if __name__ == "__main__":
    main()
