"""Where the time of `ltc create` goes: each stage of the path, timed from etcd's own changes.

The benchmark watches the box's etcd and stamps every change as it arrives; the router is polled
every 5 ms. For N instances each stage is the moment the last instance reached it:

    ltc started ─> desired written (CLI start-up + API) ─> all CLAIMED (auction)
      ─> all containers started (cell: docker create/start) ─> all RUNNING (health check)
      ─> all answer through the router ─> ltc exits (its poll of the API)

Run: .venv/bin/python -m bench.scheduler.breakdown [N ...]   (default 1 10)
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from bench.scheduler.common import RunningBox, poll, running_box
from bench.scheduler.create import docker_run
from lattice.images import build_demo_image
from lattice.store import Etcd, keys

POLL_S = 0.005


class Stamps:
    """Monotonic time at which each instance (by index) first reached each stage."""

    def __init__(self) -> None:
        self.desired: float | None = None
        self.claimed: dict[int, float] = {}
        self.started: dict[int, float] = {}
        self.running: dict[int, float] = {}

    def see(self, key: str, value: bytes, now: float) -> None:
        if key.startswith(keys.SCHEDULING) and self.desired is None:
            self.desired = now
        elif key.startswith(keys.ACTUAL) and value:
            actual = json.loads(value)
            index = actual["index"]
            if actual["state"] == "CLAIMED":
                self.claimed.setdefault(index, now)
            elif actual["state"] == "RUNNING":
                self.running.setdefault(index, now)
            # A container whose check passed at once is RUNNING in the write of its address.
            if actual["state"] in ("CLAIMED", "RUNNING") and actual["address"]:
                self.started.setdefault(index, now)


async def watch(endpoint: str, stamps: Stamps, ready: asyncio.Event) -> None:
    etcd = Etcd(endpoint)
    try:
        _, revision = await etcd.get_prefix(keys.ROOT + "nothing/")
        events = etcd.watch_prefix(keys.ROOT, revision + 1)
        ready.set()
        async for event in events:
            stamps.see(event.key, event.value, time.monotonic())
    finally:
        await etcd.close()


async def one(box: RunningBox, app: str, n: int, image: str) -> dict[str, float]:
    stamps = Stamps()
    ready = asyncio.Event()
    watcher = asyncio.create_task(watch(box.etcd, stamps, ready))
    await ready.wait()
    started = time.monotonic()
    ltc = asyncio.create_task(asyncio.to_thread(box.ltc, "create", app, image, "-i", str(n)))
    await asyncio.to_thread(poll, lambda: box.all_answer(app, n), 120, POLL_S)
    routed = time.monotonic()
    await ltc
    done = time.monotonic()
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)
    await asyncio.to_thread(box.ltc, "remove", app)

    def last(found: dict[int, float]) -> float:
        return max(found.values()) - started

    return {
        "desired written": (stamps.desired or started) - started,
        "all CLAIMED": last(stamps.claimed),
        "all started": last(stamps.started),
        "all RUNNING": last(stamps.running),
        "all answer via router": routed - started,
        "ltc exited": done - started,
    }


def ltc_startup(box: RunningBox) -> float:
    """One `ltc list`: the interpreter, ltc's imports and one API round trip."""
    started = time.monotonic()
    box.ltc("list")
    return time.monotonic() - started


def main(counts: list[int]) -> None:
    image = build_demo_image()
    with running_box() as box:
        print(f"ltc list (start-up + one request): {ltc_startup(box):.3f} s")
        for n in counts:
            reference = docker_run(image, n)
            figures = asyncio.run(one(box, f"split{n}", n, image))
            print(f"N={n}: docker run until all answer {reference:.3f} s; "
                  "seconds since ltc started:")
            for stage, at in figures.items():
                print(f"  {stage:<24} {at:6.3f}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1, 10])
