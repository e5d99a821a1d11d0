"""Brain HA with two real brain processes on one etcd: both serve the API, one leads, and the
other takes over within 10 s of the leader's death (SIGKILL: no clean release of the lock).
And a leader cut off from etcd for longer than its lease (etcd frozen with SIGSTOP) steps down,
and once etcd is back exactly one brain leads and both still take part in the election."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lattice import etcd_server
from lattice.brain.leader import LEASE_TTL_S
from lattice.etcd_server import free_port
from lattice.store import Etcd, keys
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


@contextmanager
def running_brains(etcd_endpoint: str, tmp_path: Path) -> Iterator[list[Brain]]:
    """Brains a and b as processes; a leads: it starts first and is elected before b exists."""
    started: list[Brain] = []
    with ExitStack() as stack:
        try:
            for name in ("a", "b"):
                port = free_port()
                log_path = tmp_path / f"brain-{name}.log"
                log = stack.enter_context(open(log_path, "wb"))
                process = subprocess.Popen(
                    [sys.executable, "-m", "lattice.cli.server", "brain", "--etcd",
                     etcd_endpoint, "--port", str(port)],
                    stdout=log, stderr=subprocess.STDOUT,
                )
                started.append(Brain(process, port, log_path))
                if name == "a":
                    wait_for(lambda: "leader-elected" in started[0].log(), 30, "brain a to lead")
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


@pytest.fixture
def brains(etcd_endpoint: str, tmp_path: Path) -> Iterator[list[Brain]]:
    with running_brains(etcd_endpoint, tmp_path) as started:
        yield started


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


@pytest.fixture
def etcd_process(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """An etcd of this test's own, with its process, to freeze and thaw."""
    command, process = asyncio.run(etcd_server.start_on_free_ports(tmp_path / "etcd"))
    try:
        yield command.endpoint, process
    finally:
        process.send_signal(signal.SIGCONT)     # a test that failed while it was frozen
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def leader_events(brain: Brain) -> list[tuple[str, str]]:
    """(event, identity) of each leader-elected / leader-term-ended line of the brain's log."""
    found = re.findall(r"(leader-elected|leader-term-ended) .*?identity=(\w+)", brain.log())
    return [(event, identity) for event, identity in found]


def leads(brain: Brain) -> str | None:
    """The brain's identity if, by its log, it leads now."""
    events = leader_events(brain)
    return events[-1][1] if events and events[-1][0] == "leader-elected" else None


def lock_holder(endpoint: str) -> str | None:
    async def read() -> str | None:
        etcd = Etcd(endpoint)
        try:
            kv = await etcd.get(keys.BRAIN_LEADER)
            return None if kv is None else kv.value.decode()
        finally:
            await etcd.close()

    return asyncio.run(read())


def test_a_leader_cut_off_past_its_lease_steps_down_and_the_election_goes_on(
    etcd_process: tuple[str, subprocess.Popen[bytes]], tmp_path: Path, demo_image: str
) -> None:
    endpoint, etcd = etcd_process
    with running_brains(endpoint, tmp_path) as (first, second):
        assert leads(first)
        # etcd frozen: no renewal can succeed. The leader must give up its work no later than its
        # lease could have expired, without waiting for etcd to answer.
        etcd.send_signal(signal.SIGSTOP)
        try:
            wait_for(lambda: leads(first) is None, LEASE_TTL_S * 3,
                     "the cut-off leader to step down while etcd is frozen")
        finally:
            etcd.send_signal(signal.SIGCONT)
        assert leads(second) is None      # nobody could be elected meanwhile

        # etcd is back: one brain, whichever, leads; the lock names it; both brains live.
        def sole_leader() -> Brain | None:
            leading = [brain for brain in (first, second) if leads(brain)]
            if len(leading) == 1 and lock_holder(endpoint) == leads(leading[0]):
                return leading[0]
            return None

        leader = wait_for(sole_leader, 30, "exactly one brain to lead once etcd is back")
        other = second if leader is first else first
        for brain in (first, second):
            assert brain.process.poll() is None
            assert brain.healthy()

        # The leader's controller runs: with no cell, the auction marks the instance unplaceable.
        status, _ = other.api("POST", "/v1/desired_lrps",
                              {"process_guid": "after", "image": demo_image, "instances": 1})
        assert status == 201

        def placement_error() -> str | None:
            _, actuals = other.api("GET", "/v1/actual_lrps/after")
            return actuals[0]["placement_error"] if actuals else None

        assert wait_for(placement_error, 30, "the leader's auction to run") != ""

        # And the other still campaigns: it takes over when the leader dies.
        leader.process.send_signal(signal.SIGKILL)
        leader.process.wait(timeout=10)
        wait_for(lambda: leads(other), TAKEOVER_S + LEASE_TTL_S,
                 "the other brain to lead after the leader's death")


def test_a_leader_paused_past_its_lease_stands_down_on_waking_for_the_new_leader(
    brains: list[Brain], etcd_endpoint: str
) -> None:
    first, second = brains
    assert leads(first)
    # The leader's process frozen (a long GC pause, a stopped VM): its lease expires in etcd and
    # the other brain is elected while it cannot notice.
    first.process.send_signal(signal.SIGSTOP)
    try:
        wait_for(lambda: leads(second), TAKEOVER_S + LEASE_TTL_S,
                 "the other brain to lead while the leader is frozen")
    finally:
        first.process.send_signal(signal.SIGCONT)
    # On waking, the old leader stops on its own clock (its lease's time is up), without waiting
    # for a renewal to fail, and does not take the lock back.
    wait_for(lambda: leads(first) is None, LEASE_TTL_S, "the woken leader to stand down")
    assert lock_holder(etcd_endpoint) == leads(second)
    assert leads(first) is None
    assert first.healthy()

    # It campaigns again: it leads once the new leader dies.
    second.process.send_signal(signal.SIGKILL)
    second.process.wait(timeout=10)
    wait_for(lambda: leads(first), TAKEOVER_S + LEASE_TTL_S, "the first brain to lead again")
