"""Benchmark of issue 7's functions: one invocation against `docker run --rm -i`, same run.

    docker run -i   `docker run --rm -i IMAGE cat` with the body on its stdin, until it exits
                    with the body echoed (the reference: what one container run costs at all)
    invocation      `POST http://fn.<domain>/` with the same body through the box's router:
                    admission, task + stdin in etcd, auction, the cell's create/attach/start,
                    the output back through etcd, the answer; from sending to the last byte

Every invocation is a new container: there is no warm pool, so a "warm" invocation is one on a
box that has everything loaded (image, connections, informers), which is all this measures
after one untimed invocation. The two are interleaved, so that noise hits both alike.

Run: .venv/bin/python -m bench.coldstart.function [ROUNDS]   (default 10)
"""

from __future__ import annotations

import http.client
import os
import statistics
import subprocess
import sys
import time

from bench.scheduler.common import DOMAIN, RunningBox, poll, running_box
from lattice.images import build_demo_image

NAME = "benchfn"
BODY = os.urandom(4096)


def invoke(box: RunningBox, body: bytes) -> tuple[int, bytes, float]:
    conn = http.client.HTTPConnection("127.0.0.1", box.router_port, timeout=120)
    try:
        started = time.perf_counter()
        conn.request("POST", "/", body=body, headers={"Host": f"{NAME}.{DOMAIN}"})
        response = conn.getresponse()
        answer = response.read()
        return response.status, answer, time.perf_counter() - started
    finally:
        conn.close()


def docker_run_i(image: str, body: bytes) -> float:
    started = time.perf_counter()
    result = subprocess.run(["docker", "run", "--rm", "-i", image, "cat"], input=body,
                            capture_output=True, check=True)
    took = time.perf_counter() - started
    if result.stdout != body:
        raise AssertionError("docker run -i did not echo the body")
    return took


def routed(box: RunningBox) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", box.router_port, timeout=5)
    try:
        conn.request("GET", "/", headers={"Host": f"{NAME}.{DOMAIN}"})
        return conn.getresponse().status == 405
    finally:
        conn.close()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    image = build_demo_image()
    with running_box() as box:
        status, body = box.api("POST", "/v1/functions", {
            "name": NAME, "image": image, "command": ["cat"], "memory_mb": 32})
        if status != 201:
            raise SystemExit(f"creating the function failed: {status} {body}")
        poll(lambda: routed(box), 60, every=0.05)
        invoke(box, BODY)                       # untimed: the first run loads what it needs
        docker_run_i(image, BODY)
        invocations: list[float] = []
        runs: list[float] = []
        for _ in range(rounds):
            status, answer, took = invoke(box, BODY)
            if status != 200 or answer != BODY:
                raise SystemExit(f"invocation answered {status}: {answer[:200]!r}")
            invocations.append(took)
            runs.append(docker_run_i(image, BODY))
    inv, ref = statistics.median(invocations), statistics.median(runs)
    print(f"rounds: {rounds}, body: {len(BODY)} bytes, cpus: {os.cpu_count()}")
    print(f"docker run --rm -i cat   median {ref * 1000:7.1f} ms   "
          f"p90 {percentile(runs, 0.9) * 1000:7.1f} ms")
    print(f"invocation (POST)        median {inv * 1000:7.1f} ms   "
          f"p90 {percentile(invocations, 0.9) * 1000:7.1f} ms")
    print(f"ratio invocation / docker run (medians): {inv / ref:.2f}   "
          f"difference: {(inv - ref) * 1000:+.1f} ms")


if __name__ == "__main__":
    main()
