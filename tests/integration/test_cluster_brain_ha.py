"""Brain HA with two real brain processes on one etcd: both serve the API, one leads, and the
other takes over within 10 s of the leader's death (SIGKILL: no clean release of the lock)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lattice.etcd_server import free_port
from tests.integration.box import wait_for

pytestmark = pytest.mark.integration

TAKEOVER_S = 10


@dataclass
class Brain:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, (json.loads(raw) if raw else None)

    def healthy(self) -> bool:
        try:
            return self.api("GET", "/health")[0] == 200
        except OSError:
            return False


@pytest.fixture
def brains(etcd_endpoint: str, tmp_path: Path) -> Iterator[list[Brain]]:
    started: list[Brain] = []
    with ExitStack() as stack:
        for name in ("a", "b"):
            port = free_port()
            log_path = tmp_path / f"brain-{name}.log"
            log = stack.enter_context(open(log_path, "wb"))
            process = subprocess.Popen(
                [sys.executable, "-m", "lattice.cli.server", "brain", "--etcd", etcd_endpoint,
                 "--port", str(port)],
                stdout=log, stderr=subprocess.STDOUT,
            )
            started.append(Brain(process, port, log_path))
            if name == "a":   # a leads: it starts first and is elected before b exists
                wait_for(lambda: "leader-elected" in started[0].log(), 30, "brain a to lead")
        try:
            wait_for(lambda: all(b.healthy() for b in started), 30, "both brains' APIs")
            yield started
        finally:
            for brain in started:
                if brain.process.poll() is None:
                    brain.process.send_signal(signal.SIGTERM)
            for brain in started:
                try:
                    brain.process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    brain.process.kill()
                    brain.process.wait()


def test_one_brain_leads_and_the_other_takes_over_after_its_death(
    brains: list[Brain], demo_image: str
) -> None:
    leader, follower = brains
    # Both serve the API; only the leader converges.
    assert follower.api("GET", "/v1/desired_lrps") == (200, [])
    assert "leader-elected" not in follower.log()

    leader.process.send_signal(signal.SIGKILL)
    leader.process.wait(timeout=10)
    wait_for(lambda: "leader-elected" in follower.log(), TAKEOVER_S,
             f"the surviving brain to lead within {TAKEOVER_S} s")

    # Its controller runs now: with no cell, the auction marks the instance unplaceable.
    status, _ = follower.api("POST", "/v1/desired_lrps",
                             {"process_guid": "ha", "image": demo_image, "instances": 1})
    assert status == 201

    def placement_error() -> str | None:
        _, actuals = follower.api("GET", "/v1/actual_lrps/ha")
        return actuals[0]["placement_error"] if actuals else None

    assert wait_for(placement_error, 30, "the new leader's auction to run") != ""
