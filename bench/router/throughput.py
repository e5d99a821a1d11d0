"""Router vs nginx: requests/s and latency through each, to the same two nginx backends.

    python -m bench.router.throughput [--rounds N] [--duration S] [--no-workers-2]

wrk (1 thread, 32 connections) runs on one core, the proxy under test on the other; the
backends share wrk's core, so the proxy has a core to itself. Each round measures every
target once, in turn, so that noise from other work on the machine spreads over all of them;
the best round of each is reported (the least disturbed), and the ratios are taken from those.
"""

from __future__ import annotations

import argparse
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
    args = parser.parse_args()

    build_backend_image()
    with ExitStack() as stack:
        ports = stack.enter_context(fixtures.backends(2, cpu=LOAD_CPU))
        endpoint = stack.enter_context(fixtures.etcd())
        fixtures.register_app(endpoint, ports)
        router_port = stack.enter_context(fixtures.router(endpoint, cpus=str(PROXY_CPU)))
        nginx_port = stack.enter_context(fixtures.nginx_proxy(ports, cpu=PROXY_CPU))
        targets: dict[str, Callable[[], WrkResult]] = {
            "direct to one backend": lambda: run_wrk(
                f"http://127.0.0.1:{ports[0]}/", host=None, cpu=LOAD_CPU,
                duration_s=args.duration),
            "nginx (1 worker)": lambda: run_wrk(
                f"http://127.0.0.1:{nginx_port}/", host=fixtures.APP_HOST, cpu=LOAD_CPU,
                duration_s=args.duration),
            "router (1 worker)": lambda: run_wrk(
                f"http://127.0.0.1:{router_port}/", host=fixtures.APP_HOST, cpu=LOAD_CPU,
                duration_s=args.duration),
        }
        if args.workers_2:
            # Two workers need both cores: they share them with wrk and the backends, as
            # nginx with 2 workers would.
            port_2 = stack.enter_context(
                fixtures.router(endpoint, cpus=f"{LOAD_CPU},{PROXY_CPU}", workers=2)
            )
            targets["router (2 workers)"] = lambda: run_wrk(
                f"http://127.0.0.1:{port_2}/", host=fixtures.APP_HOST, cpu=LOAD_CPU,
                duration_s=args.duration)
        best: dict[str, WrkResult] = {}
        for round_ in range(1, args.rounds + 1):
            print(f"round {round_}/{args.rounds}")
            for name, measure in targets.items():
                result = measure()
                print("  " + result.row(name), flush=True)
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


if __name__ == "__main__":
    main()
