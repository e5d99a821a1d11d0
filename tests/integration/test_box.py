"""The walking skeleton end to end: `lattice up`, `ltc`, routing by host name, crashes, logs.

One box serves the module (starting it takes seconds); each test uses its own app names. The
restart test runs its own box, because it stops and starts it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.integration.box import Box, ltc_ok, running_box, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory, demo_image: str) -> Iterator[Box]:
    with running_box(tmp_path_factory.mktemp("box")) as the_box:
        yield the_box


def containers_of(box: Box, app: str) -> list[docker.models.containers.Container]:
    """The app's containers in this box (other boxes on the engine may run the same names)."""
    labels = [f"lattice.process_guid={app}", f"lattice.cluster_id={box.cluster_id}"]
    client = docker.from_env()
    try:
        # ignore_removed: a container can go between the listing and its inspection.
        return list(client.containers.list(filters={"label": labels}, ignore_removed=True))
    finally:
        client.close()


def indices_seen(box: Box, app: str, requests: int) -> list[str]:
    seen = []
    for _ in range(requests):
        status, body = box.app(app)
        assert status == 200, body
        seen.append(body.strip().rsplit(" ", 1)[-1])
    return seen


def test_create_three_instances_all_running_and_round_robin(box: Box, demo_image: str) -> None:
    out = ltc_ok(box, "create", "web", demo_image, "--instances", "3")
    assert f"web.{box.domain}" in out
    actuals = box.wait_running("web", 3, timeout=30)   # ltc returned, so this holds at once
    assert sorted(a["index"] for a in actuals) == [0, 1, 2]
    assert all(a["address"] == "127.0.0.1" and a["ports"][0]["container_port"] == 8080
               for a in actuals)
    assert set(indices_seen(box, "web", 30)) == {"0", "1", "2"}


def test_a_killed_instance_comes_back_with_its_crash_counted(box: Box, demo_image: str) -> None:
    ltc_ok(box, "create", "crashy", demo_image, "--instances", "2")
    victim = next(c for c in containers_of(box, "crashy") if c.labels["lattice.index"] == "1")
    victim.kill()

    def back_running() -> dict | None:
        index1 = next(a for a in box.actuals("crashy") if a["index"] == 1)
        return index1 if index1["state"] == "RUNNING" and index1["crash_count"] == 1 else None

    back = wait_for(back_running, 30, "instance 1 RUNNING again with crash_count 1")
    assert back["container_id"] != victim.id
    status = json.loads(ltc_ok(box, "status", "crashy", "--json"))
    instance = next(i for i in status["instances"] if i["index"] == 1)
    assert instance["crash_count"] == 1
    assert instance["state"] == "RUNNING"


def test_scale_down_fails_no_request_and_reaches_no_removed_instance(
    box: Box, demo_image: str
) -> None:
    ltc_ok(box, "create", "scaler", demo_image, "--instances", "3")
    failures: list[str] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            status, body = box.app("scaler")
            if status != 200:
                failures.append(f"{status} {body}")

    load = threading.Thread(target=hammer)
    load.start()
    try:
        ltc_ok(box, "scale", "scaler", "1")
        wait_for(lambda: len(containers_of(box, "scaler")) == 1, 30, "the extra containers to go")
    finally:
        stop.set()
        load.join()
    assert failures == []
    assert [a["index"] for a in box.actuals("scaler")] == [0]
    assert set(indices_seen(box, "scaler", 20)) == {"0"}


def test_a_printed_line_reaches_an_ltc_logs_subscriber(box: Box, demo_image: str) -> None:
    # The app prints a marked line every 0.2 s, so one is printed after `ltc logs` attached,
    # whenever that is; the command after `--` replaces the image's.
    marker = f"tick-{uuid.uuid4().hex[:8]}"
    ltc_ok(box, "create", "talker", demo_image, "--",
           "sh", "-c", f'httpd -f -p "$PORT" -h /www & '
                       f'while true; do echo "{marker} from $INSTANCE_INDEX"; sleep 0.2; done')
    with subprocess.Popen(
        [sys.executable, "-m", "lattice.cli.ltc", "logs", "talker"], env=box.ltc_env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    ) as logs:
        assert logs.stdout is not None
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(iter(logs.stdout.readline, "")))
        reader.start()
        try:
            found = wait_for(
                lambda: next((line for line in lines if f"{marker} from 0" in line), None),
                30, "the app's line in `ltc logs`",
            )
        finally:
            logs.terminate()
            logs.wait(10)
            reader.join(10)
    assert re.match(r"^\d\d/\d\d \d\d:\d\d:\d\d\.\d\d \[APP\|0\] ", found), found


def test_after_remove_the_route_gives_404(box: Box, demo_image: str) -> None:
    ltc_ok(box, "create", "gone", demo_image)
    assert box.app("gone")[0] == 200
    ltc_ok(box, "remove", "gone")
    wait_for(lambda: box.app("gone")[0] == 404, 10, "the route to answer 404")
    wait_for(lambda: containers_of(box, "gone") == [], 20, "the container to be removed")


def test_restart_brings_every_app_back(tmp_path: Path, demo_image: str) -> None:
    box = Box(tmp_path / "box")
    box.start()
    try:
        ltc_ok(box, "target", f"{box.domain}:{box.router_port}")
        ltc_ok(box, "create", "phoenix", demo_image, "--instances", "2")
        assert box.app("phoenix")[0] == 200
        cluster_id = box.cluster_id
    finally:
        took = box.stop()
    assert took < 10, f"stopping took {took:.1f} s"
    client = docker.from_env()
    try:
        left = client.containers.list(
            all=True, filters={"label": f"lattice.cluster_id={cluster_id}"})
    finally:
        client.close()
    assert left == []

    box.start()
    try:
        box.wait_running("phoenix", 2, timeout=60)
        wait_for(lambda: box.app("phoenix")[0] == 200, 20, "the app to answer again")
        assert set(indices_seen(box, "phoenix", 10)) == {"0", "1"}
    finally:
        box.stop()


def test_a_component_that_dies_is_restarted(box: Box) -> None:
    router = box.component_pid("router")
    assert router is not None
    os.kill(router, signal.SIGKILL)
    restarted = wait_for(
        lambda: (pid := box.component_pid("router")) != router and pid,
        30, "a new router process",
    )
    assert restarted != router
    def api_answers() -> bool:
        try:
            return box.api("GET", "/v1/info")[0] == 200
        except OSError:
            return False      # the new router is not listening yet

    wait_for(api_answers, 30, "the API through the new router")
