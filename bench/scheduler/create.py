"""Benchmark 1 of issue 3: `ltc create` of N instances until every one answers through the
router, against `docker run` of the same N containers polled until they answer.

Run: .venv/bin/python -m bench.scheduler.create [--rounds R] [N ...]   (default 1 10 30, R 3)
Each round times `docker run` and then `ltc create`; the figure is the ratio of the medians.
The goal is a ratio lattice/docker <= 1.15.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import subprocess
import time

from bench.scheduler.common import http_get, poll, running_box
from lattice.images import build_demo_image

LABEL = "lattice.bench=1"


def docker_run(image: str, n: int) -> float:
    """Start n containers in parallel, as fast as the CLI allows; seconds until all answer."""
    started = time.monotonic()

    def one(i: int) -> None:
        cid = subprocess.run(
            ["docker", "run", "-d", "--label", LABEL, "-e", f"INSTANCE_INDEX={i}",
             "-e", "PORT=8080", "-p", "127.0.0.1::8080", image],
            check=True, capture_output=True, text=True).stdout.strip()
        port = int(subprocess.run(["docker", "port", cid, "8080"], check=True,
                                  capture_output=True, text=True).stdout.split(":")[-1])
        poll(lambda: http_get(port)[0] == 200, 60)

    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
            list(pool.map(one, range(n)))
        return time.monotonic() - started
    finally:
        ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label={LABEL}"],
                             capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)


def app_containers(app: str) -> list[str]:
    return subprocess.run(["docker", "ps", "-aq", "--filter", f"label=lattice.process_guid={app}"],
                          capture_output=True, text=True, check=True).stdout.split()


def main(counts: list[int], rounds: int) -> None:
    image = build_demo_image()
    print(f"{'N':>4} {'round':>5} {'docker run (s)':>15} {'ltc create (s)':>15} {'ratio':>7}")
    with running_box() as box:
        for n in counts:
            references, measurements = [], []
            for round_ in range(1, rounds + 1):
                reference = docker_run(image, n)
                app = f"bench{n}-{round_}"
                started = time.monotonic()
                box.ltc("create", app, image, "-i", str(n), "-t", "300")
                poll(lambda app=app, n=n: box.all_answer(app, n), 60)
                measured = time.monotonic() - started
                box.ltc("remove", app)
                # The reference removes its containers before it goes on: so does this, so
                # that no round overlaps the last one's clean-up (drain, stop, removal).
                poll(lambda app=app: not app_containers(app), 60, every=0.05)
                references.append(reference)
                measurements.append(measured)
                print(f"{n:>4} {round_:>5} {reference:>15.2f} {measured:>15.2f} "
                      f"{measured / reference:>7.2f}")
            reference, measured = statistics.median(references), statistics.median(measurements)
            print(f"{n:>4} {'median':>5} {reference:>15.2f} {measured:>15.2f} "
                  f"{measured / reference:>7.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("counts", nargs="*", type=int, default=[1, 10, 30])
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds per N; the ratio of the medians is the figure")
    args = parser.parse_args()
    main(args.counts, args.rounds)
