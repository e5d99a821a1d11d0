"""Logs end to end on a real `lattice up` with real containers: envelopes, recent lines, crash
logs in `ltc status`, an aggregator restart losing no line, the firehose.

One box serves the module; each test uses its own app names.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.box import Box, ltc, ltc_ok, running_box, wait_for

pytestmark = pytest.mark.integration

TICK = re.compile(r"\[APP\|0\] tick (\d+)$")


class Follower:
    """A long-running `ltc` command whose output lines are collected as they come."""

    def __init__(self, box: Box, *args: str) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lattice.cli.ltc", *args], env=box.ltc_env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self._reader = threading.Thread(target=self._read)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(10)
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        stderr = self.process.stderr.read()
        self.process.stdout.close()
        self.process.stderr.close()
        return stderr


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory, demo_image: str) -> Iterator[Box]:
    with running_box(tmp_path_factory.mktemp("logsbox")) as the_box:
        yield the_box


@pytest.fixture
def followers() -> Iterator[list[Follower]]:
    started: list[Follower] = []
    yield started
    for follower in started:
        follower.stop()


@pytest.fixture
def apps(box: Box) -> Iterator[list[str]]:
    created: list[str] = []
    yield created
    for app in created:
        ltc(box, "rm", app)


def doppler_json(box: Box, path: str) -> Any:
    status, body = box.request(f"doppler.{box.domain}", path=path)
    assert status == 200, body
    return json.loads(body)


def ticks(lines: list[str]) -> list[int]:
    return [int(m.group(1)) for line in lines if (m := TICK.search(line))]


def create_ticker(box: Box, apps: list[str], app: str, image: str, script: str) -> None:
    ltc_ok(box, "create", app, image, "--no-monitor", "--no-routes", "--", "sh", "-c", script)
    apps.append(app)


def test_envelopes_carry_source_type_stream_and_ns_time_and_long_lines_are_split(
        box: Box, demo_image: str, apps: list[str]) -> None:
    create_ticker(box, apps, "longline", demo_image,
                  "head -c 10000 /dev/zero | tr '\\0' x; echo; echo to-stderr >&2; sleep 3600")

    def arrived() -> list[dict[str, Any]] | None:
        lines = doppler_json(box, "/apps/longline/recentlogs")
        return lines if any(e["message"] == "to-stderr" for e in lines) else None

    lines = wait_for(arrived, 60, "the long line and the stderr line")
    pieces = [e for e in lines if e["source_type"] == "APP" and e["message"].startswith("x")]
    assert [len(p["message"]) for p in pieces] == [4096, 4096, 1808]
    assert {(p["message_type"], p["source_instance"]) for p in pieces} == {("OUT", "0")}
    [stderr] = [e for e in lines if e["message"] == "to-stderr"]
    assert stderr["message_type"] == "ERR"
    assert stderr["timestamp"] > 1_600_000_000 * 10**9      # ns since the epoch
    assert any(e["source_type"] == "CELL" for e in lines)


def test_recent_prints_and_exits_and_recent_follow_has_no_gap_and_no_duplicate(
        box: Box, demo_image: str, apps: list[str], followers: list[Follower]) -> None:
    create_ticker(box, apps, "ticker", demo_image,
                  "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.02; done")
    wait_for(lambda: len(ticks(ltc_ok(box, "logs", "ticker", "--recent").splitlines())) >= 20,
             60, "20 recent ticks")
    recent = ticks(ltc_ok(box, "logs", "ticker", "--recent").splitlines())
    assert recent == list(range(recent[0], recent[0] + len(recent)))

    follower = Follower(box, "logs", "ticker", "--recent", "-f")
    followers.append(follower)
    wait_for(lambda: len(ticks(follower.lines)) > len(recent) + 100, 60, "100 live ticks more")
    seen = ticks(follower.lines)
    assert seen == list(range(seen[0], seen[0] + len(seen))), "a gap or a duplicate"

    live = Follower(box, "logs", "ticker")
    followers.append(live)
    wait_for(lambda: len(ticks(live.lines)) >= 5, 30, "live ticks")
    newest_recent = ticks(ltc_ok(box, "logs", "ticker", "--recent").splitlines())[-1]
    # Without --recent nothing old is printed: its first tick is a new one.
    assert ticks(live.lines)[0] > recent[-1]
    assert newest_recent >= ticks(live.lines)[0]


def test_crash_logs_survive_restart_and_removal_until_the_name_is_created_again(
        box: Box, demo_image: str, apps: list[str]) -> None:
    # `ltc create` may see it RUNNING for a moment or give up on its crashes: either is fine.
    ltc(box, "create", "crasher", demo_image, "--no-monitor", "--no-routes", "--",
        "sh", "-c", "for i in $(seq 1 60); do echo line $i; done; echo dying >&2; exit 3")
    apps.append("crasher")

    def crash_record() -> dict[str, Any] | None:
        result = ltc(box, "status", "crasher", "--json")
        if result.returncode != 0:
            return None
        records = json.loads(result.stdout)["crash_logs"]
        return records[0] if records else None

    record = wait_for(crash_record, 60, "a crash log in `ltc status --json`")
    assert (record["index"], record["exit_status"]) == (0, 3)
    messages = [line["message"] for line in record["lines"]]
    assert len(messages) == 50
    assert messages[-1] == "Exit status 3" or "dying" in messages
    assert "line 60" in messages
    assert "line 1" not in messages             # only the last 50 lines are kept
    wait_for(lambda: box.actuals("crasher")[0]["crash_count"] >= 2, 60,
             "the instance restarted and crashed again")
    text = ltc_ok(box, "status", "crasher")
    assert "instance 0: exit status 3" in text
    assert "[APP|0] line 60" in text

    ltc_ok(box, "rm", "crasher")
    apps.remove("crasher")
    removed = ltc(box, "status", "crasher")
    assert removed.returncode == 0, removed.stderr
    assert "App crasher was removed." in removed.stdout
    assert "[APP|0] line 60" in removed.stdout
    assert json.loads(ltc_ok(box, "status", "crasher", "--json"))["removed"] is True

    create_ticker(box, apps, "crasher", demo_image, "sleep 3600")
    wait_for(lambda: json.loads(ltc_ok(box, "status", "crasher", "--json"))["crash_logs"] == [],
             30, "the old crash logs gone once the name is created again")


def test_an_unknown_app_in_status_is_still_not_found(box: Box) -> None:
    result = ltc(box, "status", "never-created")
    assert result.returncode != 0
    assert "never-created" in result.stderr


def test_an_aggregator_restart_loses_no_line(
        box: Box, demo_image: str, apps: list[str], followers: list[Follower]) -> None:
    # 400 numbered lines over ~16 s, then quiet: the restart happens in the middle.
    create_ticker(box, apps, "steady", demo_image,
                  "for i in $(seq 1 400); do echo tick $i; sleep 0.04; done; sleep 3600")
    before = Follower(box, "logs", "steady", "--recent", "-f")
    followers.append(before)
    wait_for(lambda: len(ticks(before.lines)) >= 50, 60, "50 ticks before the restart")
    pid = box.component_pid("logagg")
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    # The follower's stream ends with the aggregator; what it saw is what the old one had.
    wait_for(lambda: before.process.poll() is not None, 30, "the old stream to end")

    def restarted() -> int | None:
        new = box.component_pid("logagg")
        return new if new not in (None, pid) else None

    wait_for(restarted, 30, "lattice up to restart the log aggregator")

    def all_ticks() -> list[int] | None:
        status, body = box.request(f"doppler.{box.domain}", path="/apps/steady/recentlogs")
        if status != 200:
            return None
        after = [int(e["message"].split()[1]) for e in json.loads(body)
                 if e["source_type"] == "APP" and e["message"].startswith("tick ")]
        return after if after and after[-1] == 400 else None

    after = wait_for(all_ticks, 60, "tick 400 in the restarted aggregator")
    seen = sorted(set(ticks(before.lines)) | set(after))
    assert seen == list(range(1, 401)), f"lost: {sorted(set(range(1, 401)) - set(seen))}"
    assert not any(e["source_type"] == "LGR"
                   for e in doppler_json(box, "/apps/steady/recentlogs"))


def test_the_firehose_carries_every_apps_lines_on_loopback(
        box: Box, demo_image: str, apps: list[str]) -> None:
    import asyncio

    import aiohttp

    create_ticker(box, apps, "hose", demo_image,
                  "while true; do echo hose-line; sleep 0.1; done")

    async def first_hose_line() -> dict[str, Any]:
        async with aiohttp.ClientSession() as session, session.ws_connect(
                f"http://127.0.0.1:{box.router_port}/firehose",
                headers={"Host": f"doppler.{box.domain}"}) as ws:
            async for msg in ws:
                envelope = json.loads(msg.data)
                if envelope["app_id"] == "hose":
                    return dict(envelope)
        raise AssertionError("the firehose ended")

    envelope = asyncio.run(asyncio.wait_for(first_hose_line(), 60))
    assert envelope["message"] == "hose-line"


def test_debug_logs_show_the_components_own_events(
        box: Box, demo_image: str, apps: list[str], followers: list[Follower]) -> None:
    def debug_subscribers() -> int:
        return sum("subscriber-connected" in ln and "app_id=lattice-debug" in ln
                   for ln in box.logs().splitlines())

    attached = debug_subscribers()
    debug = Follower(box, "debug-logs")
    followers.append(debug)
    # instance-started is logged once: `ltc debug-logs`, a process of its own, must have
    # attached before the create (which became quick enough to win that race).
    wait_for(lambda: debug_subscribers() > attached, 30, "`ltc debug-logs` to attach")
    create_ticker(box, apps, "debugged", demo_image, "sleep 3600")
    line = wait_for(lambda: next((ln for ln in debug.lines
                                  if "[cell]" in ln and '"instance-started"' in ln
                                  and '"debugged"' in ln), None),
                    30, "the cell's instance-started event for the new app")
    assert json.loads(line.split("] ", 1)[1])["component"] == "cell"
