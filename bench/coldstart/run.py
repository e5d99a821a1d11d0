"""Benchmark of issue 7 (scale to zero), against `docker run` measured in the same run.

    docker run     `docker run -d -p 127.0.0.1::8080` of the demo image, polled until it
                   answers (the reference: what starting a container costs at all)
    cold start     stop mode: the app scaled to zero, one request through the router; from
                   sending it to the answer's first byte (status line and head)
    wake           pause mode: the app's container frozen, one request; likewise; beside
                   it, `docker unpause` from the CLI of a paused container (the reference:
                   what thawing costs at all, and how loaded the machine is)
    warm           a request to the running app through the router, and straight to the
                   container's published port

Run: .venv/bin/python -m bench.coldstart.run [ROUNDS]   (default 10 cold starts, 3x wakes)
Goals: cold start <= docker run + 150 ms (medians); wake p99 <= 50 ms.
"""

from __future__ import annotations

import asyncio
import http.client
import statistics
import subprocess
import sys
import time

from bench.scheduler.common import DOMAIN, RunningBox, http_get, poll, running_box
from lattice.images import build_demo_image
from lattice.store import Etcd, ensure_cluster_id

LABEL = "lattice.bench.coldstart=1"
IDLE_TIMEOUT = "1s"


def timed_get(port: int, host: str | None = None) -> tuple[int, float]:
    """One GET on a new connection: status and seconds to the answer's head (first byte)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        started = time.perf_counter()
        conn.request("GET", "/", headers={"Host": host} if host else {})
        response = conn.getresponse()
        took = time.perf_counter() - started
        response.read()
        return response.status, took
    finally:
        conn.close()


def docker_run_once(image: str) -> float:
    started = time.perf_counter()
    cid = subprocess.run(
        ["docker", "run", "-d", "--label", LABEL, "-e", "PORT=8080", "-p", "127.0.0.1::8080",
         image], check=True, capture_output=True, text=True).stdout.strip()
    try:
        port = int(subprocess.run(["docker", "port", cid, "8080"], check=True,
                                  capture_output=True, text=True).stdout.split(":")[-1])
        poll(lambda: http_get(port)[0] == 200, 60, every=0.005)
        return time.perf_counter() - started
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True, check=False)


def docker_unpause_times(image: str, rounds: int) -> list[float]:
    cid = subprocess.run(
        ["docker", "run", "-d", "--label", LABEL, "-e", "PORT=8080", image], check=True,
        capture_output=True, text=True).stdout.strip()
    try:
        times = []
        for _ in range(rounds):
            subprocess.run(["docker", "pause", cid], check=True, capture_output=True)
            started = time.perf_counter()
            subprocess.run(["docker", "unpause", cid], check=True, capture_output=True)
            times.append(time.perf_counter() - started)
        return times
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True, check=False)


def cluster_id(box: RunningBox) -> str:
    async def read() -> str:
        etcd = Etcd(box.etcd)
        try:
            return await ensure_cluster_id(etcd)
        finally:
            await etcd.close()
    return asyncio.run(read())


def containers(cluster: str, app: str) -> list[str]:
    return subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=lattice.cluster_id={cluster}",
         "--filter", f"label=lattice.process_guid={app}"],
        capture_output=True, text=True, check=True).stdout.split()


def scaled_to_zero(box: RunningBox, cluster: str, app: str) -> bool:
    status, desired = box.api("GET", f"/v1/desired_lrps/{app}")
    return status == 200 and desired["instances"] == 0 and not containers(cluster, app)


def paused(box: RunningBox, app: str) -> bool:
    status, actuals = box.api("GET", f"/v1/actual_lrps/{app}")
    return status == 200 and len(actuals) == 1 and bool(actuals[0].get("paused"))


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def ms(value: float) -> str:
    return f"{value * 1000:7.1f} ms"


def main(rounds: int) -> None:
    image = build_demo_image()
    docker_run_once(image)      # warm the engine's caches, as the box's first start does
    with running_box() as box:
        cluster = cluster_id(box)
        box.ltc("create", "cold", image, "--min-instances", "0", "--idle-timeout", IDLE_TIMEOUT)
        box.ltc("create", "nap", image, "--min-instances", "0", "--idle-timeout", IDLE_TIMEOUT,
                "--idle-mode", "pause")
        reference: list[float] = []
        cold: list[float] = []
        for _ in range(rounds):
            # Interleaved, so that both see the same load on the machine.
            reference.append(docker_run_once(image))
            poll(lambda: scaled_to_zero(box, cluster, "cold"), 60, every=0.05)
            status, took = timed_get(box.router_port, f"cold.{DOMAIN}")
            assert status == 200, status
            cold.append(took)
        wakes: list[float] = []
        for _ in range(3 * rounds):
            poll(lambda: paused(box, "nap"), 60, every=0.05)
            status, took = timed_get(box.router_port, f"nap.{DOMAIN}")
            assert status == 200, status
            wakes.append(took)
        unpause = docker_unpause_times(image, rounds)
        box.ltc("create", "warm", image)
        status, actuals = box.api("GET", "/v1/actual_lrps/warm")
        direct_port = actuals[0]["ports"][0]["host_port"]
        warm = [timed_get(box.router_port, f"warm.{DOMAIN}")[1] for _ in range(200)]
        direct = [timed_get(direct_port)[1] for _ in range(200)]

    ref = statistics.median(reference)
    print(f"rounds: {rounds} cold starts, {len(wakes)} wakes, 200 warm requests")
    print(f"docker run until it answers   median {ms(ref)}  "
          f"(min {ms(min(reference))}, max {ms(max(reference))})")
    cold_median = statistics.median(cold)
    print(f"cold start, stop mode         median {ms(cold_median)}  "
          f"(min {ms(min(cold))}, max {ms(max(cold))})  "
          f"= docker run {cold_median - ref:+.3f} s, ratio {cold_median / ref:.2f}  "
          f"[goal: <= +0.150 s]")
    print(f"wake, pause mode              p50 {ms(quantile(wakes, 0.5))}  "
          f"p99 {ms(quantile(wakes, 0.99))}  max {ms(max(wakes))}  [goal: p99 <= 50 ms]")
    print(f"docker unpause (CLI)          p50 {ms(quantile(unpause, 0.5))}  "
          f"p99 {ms(quantile(unpause, 0.99))}  max {ms(max(unpause))}")
    print(f"warm, through the router      p50 {ms(quantile(warm, 0.5))}  "
          f"p99 {ms(quantile(warm, 0.99))}")
    print(f"warm, straight to container   p50 {ms(quantile(direct, 0.5))}  "
          f"p99 {ms(quantile(direct, 0.99))}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
