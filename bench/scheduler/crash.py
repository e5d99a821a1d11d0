"""Benchmark 2 of issue 3: from `docker kill` of an instance to that index RUNNING again and
answering through the router, against one plain `docker run` until it answers (the floor any
restart pays).

Run: .venv/bin/python -m bench.scheduler.crash [ROUNDS]   (default 5; only the first two
crashes of an instance restart at once, so each round kills a different index)
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from bench.scheduler.common import poll, running_box
from bench.scheduler.create import docker_run
from lattice.images import build_demo_image


def main(rounds: int) -> None:
    image = build_demo_image()
    floors, restarts = [], []
    with running_box() as box:
        box.ltc("create", "crashy", image, "-i", str(rounds))
        for index in range(rounds):
            floors.append(docker_run(image, 1))
            cid = subprocess.run(
                ["docker", "ps", "-q", "--filter", "label=lattice.process_guid=crashy",
                 "--filter", f"label=lattice.index={index}"],
                check=True, capture_output=True, text=True).stdout.strip()
            started = time.monotonic()
            subprocess.run(["docker", "kill", cid], check=True, capture_output=True)

            def back(index: int = index) -> bool:
                _, actuals = box.api("GET", "/v1/actual_lrps/crashy")
                mine = next(a for a in actuals if a["index"] == index)
                return mine["state"] == "RUNNING" and mine["crash_count"] == 1

            poll(back, 60)
            poll(lambda: box.all_answer("crashy", rounds), 30)
            restarts.append(time.monotonic() - started)
        box.ltc("remove", "crashy")
    floor, restart = statistics.median(floors), statistics.median(restarts)
    print(f"docker run until it answers (median of {rounds}): {floor:.2f} s")
    print(f"docker kill until RUNNING again and routed (median of {rounds}): {restart:.2f} s")
    print(f"ratio: {restart / floor:.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
