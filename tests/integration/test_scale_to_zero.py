"""Scale to zero end to end (issue 7), on a real box (`lattice up`: brain, cell, router, Docker):
an idle app goes to zero; the first request after that is held and answered from one cold
start, also when ten arrive at once; pause mode freezes the container and a request thaws it;
load scales up to the maximum; a start that never becomes healthy ends in a 503 within the
router's bound; ltc's flags on create and update, bad values refused with nothing changed."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from lattice.images import build_busybox_image
from tests.integration.box import Box, ltc, ltc_ok, running_box, wait_for

pytestmark = pytest.mark.integration

HOLD_BOUND_S = 6.0

DOCKERFILE = b"""\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY www /www
EXPOSE 8080
CMD ["/bin/sh", "-c", "exec httpd -f -p 8080 -h /www"]
"""


@pytest.fixture(scope="module")
def image(docker_client: object) -> str:
    """`/` answers the instance's index at once; `/cgi-bin/slow.cgi` after 3 s."""
    index = (b"#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\n"
             b"echo \"up $INSTANCE_INDEX\"\n")
    slow = (b"#!/bin/sh\nsleep 3\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\n"
            b"echo \"slow $INSTANCE_INDEX\"\n")
    return build_busybox_image("lattice-test/scale:v1", DOCKERFILE, {
        "www/cgi-bin/index.cgi": (index, 0o755), "www/cgi-bin/slow.cgi": (slow, 0o755),
    })


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory, image: str) -> Iterator[Box]:
    with running_box(tmp_path_factory.mktemp("box"),
                     env={"LATTICE_ROUTER_COLD_START_TIMEOUT": str(HOLD_BOUND_S)}) as the_box:
        yield the_box


def labels(box: Box, app: str) -> list[str]:
    return [f"lattice.process_guid={app}", f"lattice.cluster_id={box.cluster_id}"]


def containers_of(box: Box, app: str) -> list[dict[str, Any]]:
    client = docker.from_env()
    try:
        found: list[dict[str, Any]] = client.api.containers(
            all=True, filters={"label": labels(box, app)})
        return found
    finally:
        client.close()


def starts_since(box: Box, app: str, since: float) -> int:
    """How many containers of the app Docker started since `since` (from its event log)."""
    client = docker.from_env()
    try:
        events = client.api.events(since=since, until=time.time(), decode=True,
                                   filters={"label": labels(box, app), "event": "start"})
        return sum(1 for _ in events)
    finally:
        client.close()


def desired(box: Box, app: str) -> dict[str, Any]:
    status, body = box.api("GET", f"/v1/desired_lrps/{app}")
    assert status == 200, body
    return dict(body)


def wait_scaled_to_zero(box: Box, app: str, timeout: float = 30) -> None:
    def gone() -> bool:
        return desired(box, app)["instances"] == 0 and not box.actuals(app) and not (
            containers_of(box, app))
    wait_for(gone, timeout, f"{app} to scale to zero and its container to go")


def paused_state(box: Box, app: str) -> bool | None:
    found = containers_of(box, app)
    if len(found) != 1:
        return None
    client = docker.from_env()
    try:
        return bool(client.api.inspect_container(found[0]["Id"])["State"]["Paused"])
    finally:
        client.close()


def test_idle_app_scales_to_zero_and_the_first_request_is_held_and_answered(
    box: Box, image: str
) -> None:
    out = ltc_ok(box, "create", "zero", image, "--min-instances", "0", "--max-instances", "3",
                 "--idle-timeout", "2s")
    assert "zero is running: 1 instance(s)." in out   # it starts with one: the image runs
    scale = desired(box, "zero")["autoscale"]
    assert scale == {"min_instances": 0, "max_instances": 3, "idle_timeout_s": 2.0,
                     "idle_mode": "stop", "target_concurrency": 10}
    wait_scaled_to_zero(box, "zero")
    since = time.time()
    started = time.monotonic()
    status, body = box.app("zero")
    assert (status, body.strip()) == (200, "up 0")
    assert time.monotonic() - started < HOLD_BOUND_S
    assert starts_since(box, "zero", since) == 1
    # Requests keep it up; once they stop it goes down again.
    for _ in range(5):
        assert box.app("zero")[0] == 200
    wait_scaled_to_zero(box, "zero")
    status_text = ltc_ok(box, "status", "zero")
    assert "idle (scaled to zero)" in status_text
    assert "Cold starts: 1 (" in status_text
    scaling = json.loads(ltc_ok(box, "status", "zero", "--json"))["scaling"]
    assert scaling["state"] == "idle (scaled to zero)"
    assert scaling["cold_starts"]["count"] == 1
    assert 0 < scaling["cold_starts"]["last_ms"] < HOLD_BOUND_S * 1000


def test_ten_concurrent_first_requests_all_succeed_from_one_cold_start(
    box: Box, image: str
) -> None:
    ltc_ok(box, "create", "ten", image, "--min-instances", "0", "--idle-timeout", "1s")
    wait_scaled_to_zero(box, "ten")
    since = time.time()
    answers: list[tuple[int, str]] = []
    barrier = threading.Barrier(10)

    def first_request() -> None:
        barrier.wait()
        answers.append(box.app("ten"))

    threads = [threading.Thread(target=first_request) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(answers) == [(200, "up 0\n")] * 10
    assert starts_since(box, "ten", since) == 1
    assert len(box.actuals("ten")) == 1


def test_pause_mode_freezes_the_idle_container_and_a_request_thaws_it(
    box: Box, image: str
) -> None:
    ltc_ok(box, "create", "nap", image, "--min-instances", "0", "--idle-timeout", "1s",
           "--idle-mode", "pause")
    wait_for(lambda: paused_state(box, "nap") is True, 30, "the container to be paused")
    actual = box.actuals("nap")[0]
    assert actual["state"] == "RUNNING"
    assert actual["paused"] is True
    assert desired(box, "nap")["instances"] == 1
    before = containers_of(box, "nap")[0]["Id"]
    status, body = box.app("nap")
    assert (status, body.strip()) == (200, "up 0")
    assert containers_of(box, "nap")[0]["Id"] == before       # the same container, thawed
    assert "paused" not in box.actuals("nap")[0]
    # Idle again: paused again.
    wait_for(lambda: paused_state(box, "nap") is True, 30, "the container to be paused again")
    assert "paused" in ltc_ok(box, "status", "nap")


def test_concurrent_load_scales_up_to_max_instances(box: Box, image: str) -> None:
    ltc_ok(box, "create", "burst", image, "--min-instances", "0", "--max-instances", "3",
           "--target-concurrency", "1", "--idle-timeout", "2s")
    answers: list[int] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            answers.append(box.request(f"burst.{box.domain}", path="/cgi-bin/slow.cgi")[0])

    threads = [threading.Thread(target=load) for _ in range(5)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: len([a for a in box.actuals("burst") if a["state"] == "RUNNING"]) == 3,
                 40, "three RUNNING instances under load")
        assert desired(box, "burst")["instances"] == 3          # never above max
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert answers
    assert set(answers) == {200}
    wait_scaled_to_zero(box, "burst")


def test_a_start_that_never_becomes_healthy_is_a_503_within_the_bound(
    box: Box, image: str
) -> None:
    status, body = box.api("POST", "/v1/desired_lrps", {
        "process_guid": "sick", "image": image, "instances": 0,
        "routes": [{"hostnames": [f"sick.{box.domain}"]}],
        "monitor": {"http": {"port": 8080, "path": "/missing"}},
        "autoscale": {"min_instances": 0, "max_instances": 1, "idle_timeout_s": 30},
    })
    assert status == 201, body
    started = time.monotonic()
    status, raw = box.request(f"sick.{box.domain}", timeout=HOLD_BOUND_S + 10)
    waited = time.monotonic() - started
    assert status == 503
    assert b"did not become ready within" in raw
    assert HOLD_BOUND_S - 0.5 < waited < HOLD_BOUND_S + 3


def test_ltc_flags_on_create_and_update_bad_values_refused(box: Box, image: str) -> None:
    bad = ltc(box, "create", "badscale", image, "--min-instances", "3", "--max-instances", "2",
              "--idle-timeout", "0", "--idle-mode", "sleep", "--target-concurrency", "0")
    assert bad.returncode == 13, bad.stderr
    for flag in ("min-instances", "idle-timeout", "idle-mode", "target-concurrency"):
        assert flag in bad.stderr
    assert box.api("GET", "/v1/desired_lrps/badscale")[0] == 404

    ltc_ok(box, "create", "tune", image, "--min-instances", "1", "--max-instances", "2",
           "--idle-timeout", "30s")
    refused = ltc(box, "update", "tune", "--min-instances", "5")
    assert refused.returncode == 13, refused.stderr
    assert "min-instances" in refused.stderr
    assert desired(box, "tune")["autoscale"]["min_instances"] == 1     # nothing changed
    ltc_ok(box, "update", "tune", "--max-instances", "4", "--idle-mode", "pause",
           "--target-concurrency", "5")
    assert desired(box, "tune")["autoscale"] == {
        "min_instances": 1, "max_instances": 4, "idle_timeout_s": 30.0, "idle_mode": "pause",
        "target_concurrency": 5}
    # The API refuses what ltc would: every bad field named.
    status, body = box.api("PUT", "/v1/desired_lrps/tune", {"autoscale": {
        "min_instances": 9, "max_instances": 2000, "idle_timeout_s": -1, "idle_mode": "x"}})
    assert status == 400
    fields = {f["field"] for f in body["error"]["fields"]}
    assert fields == {"autoscale.max_instances", "autoscale.idle_timeout_s",
                      "autoscale.idle_mode"}
    # Only an autoscaled app can be woken; another's count is the user's.
    assert box.api("POST", "/v1/desired_lrps", {"process_guid": "plain", "image": image,
                                                "instances": 0})[0] == 201
    status, body = box.api("POST", "/v1/desired_lrps/plain/wake")
    assert status == 409, body
    assert desired(box, "plain")["instances"] == 0
    assert box.api("POST", "/v1/desired_lrps/nosuch/wake")[0] == 404
