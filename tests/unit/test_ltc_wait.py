"""Waiting for instances: the verdict on one poll, and the poll loop with a scripted clock."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from lattice.client.app_runner import (
    POLL_INTERVAL_WITH_EVENTS_S,
    Progress,
    assess,
    uptime_s,
    wait_until_running,
)
from lattice.client.errors import InstancesCrashed, PlacementFailed, WaitTimedOut
from lattice.models import ActualLRP, ActualState

U, C, R, X = ActualState.UNCLAIMED, ActualState.CLAIMED, ActualState.RUNNING, ActualState.CRASHED


def lrp(index: int, state: ActualState, **kw: object) -> ActualLRP:
    return ActualLRP("web", index, f"guid-{index}", state, since=1, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("states", "desired", "running", "done"),
    [
        ([R, R, R], 3, 3, True),
        ([R, C, U], 3, 1, False),
        ([R, R], 3, 2, False),                  # index 2 not even created yet
        ([R, R, R], 2, 2, False),               # scaling down: index 2 must go first
        ([], 0, 0, True),
        ([X, R], 2, 1, False),                  # a crash below the limit is waited out
    ],
)
def test_assess(states: list[ActualState], desired: int, running: int, done: bool) -> None:
    verdict = assess("web", [lrp(i, s) for i, s in enumerate(states)], desired, crash_limit=3)
    assert (verdict.running, verdict.done, verdict.failure) == (running, done, None)


def test_a_placement_error_fails_the_wait_naming_the_instance() -> None:
    verdict = assess("web", [lrp(0, R), lrp(1, U, placement_error="no cells available")], 2, 3)
    assert isinstance(verdict.failure, PlacementFailed)
    assert [(p.index, p.reason) for p in verdict.failure.problems] == [(1, "no cells available")]


def test_repeated_crashes_fail_the_wait_with_the_reason() -> None:
    actuals = [
        lrp(0, X, crash_count=3, crash_reason="exited with status 1"),
        lrp(1, U, crash_count=3),                       # waiting to restart: still failing
        lrp(2, R, crash_count=5),                       # came back: fine
        lrp(3, X, crash_count=2, crash_reason="oom"),   # below the limit
    ]
    verdict = assess("web", actuals, 4, crash_limit=3)
    assert isinstance(verdict.failure, InstancesCrashed)
    assert [(p.index, p.reason, p.crash_count) for p in verdict.failure.problems] == [
        (0, "exited with status 1", 3), (1, "crashed", 3),
    ]


def test_extra_instances_are_ignored_when_judging_failures() -> None:
    actuals = [lrp(0, R), lrp(1, U, placement_error="insufficient resources")]
    assert assess("web", actuals, 1, 3).failure is None


class Script:
    """Answers each poll with the next list of instances and advances a fake clock by 1 s."""

    def __init__(self, polls: list[list[ActualLRP]]) -> None:
        self._polls: Iterator[list[ActualLRP]] = iter(polls)
        self.now = 0.0
        self.fetches = 0

    async def fetch(self) -> list[ActualLRP]:
        self.fetches += 1
        self.now += 1
        return next(self._polls)

    def clock(self) -> float:
        return self.now


async def test_wait_returns_when_all_run_and_reports_only_changes() -> None:
    script = Script([[lrp(0, U), lrp(1, U)], [lrp(0, U), lrp(1, U)], [lrp(0, R), lrp(1, C)],
                     [lrp(1, R), lrp(0, R)]])
    seen: list[Progress] = []
    found = await wait_until_running(script.fetch, "web", 2, timeout_s=10, on_progress=seen.append,
                                     poll_interval_s=0, clock=script.clock)
    assert [a.index for a in found] == [0, 1]
    assert [(p.running, p.desired) for p in seen] == [(0, 2), (1, 2), (2, 2)]
    assert script.fetches == 4


async def test_wait_times_out_with_the_count_reached() -> None:
    script = Script([[lrp(0, R), lrp(1, C)]] * 10)
    with pytest.raises(WaitTimedOut) as caught:
        await wait_until_running(script.fetch, "web", 2, timeout_s=3, poll_interval_s=0,
                                 clock=script.clock)
    assert (caught.value.running, caught.value.desired, caught.value.timeout_s) == (1, 2, 3)
    assert script.fetches == 3


async def test_wait_fails_at_once_on_a_placement_error() -> None:
    script = Script([[lrp(0, U)], [lrp(0, U, placement_error="no cells available")], [lrp(0, R)]])
    seen: list[Progress] = []
    with pytest.raises(PlacementFailed):
        await wait_until_running(script.fetch, "web", 1, timeout_s=10, on_progress=seen.append,
                                 poll_interval_s=0, clock=script.clock)
    assert script.fetches == 2
    assert len(seen) == 1   # the state did not change between the two polls, only the error


def test_uptime_only_while_running() -> None:
    assert uptime_s(lrp(0, R), now_ns=2_500_000_001) == pytest.approx(2.5)
    assert uptime_s(lrp(0, C), now_ns=2_500_000_001) is None


class ScriptedChanges:
    """Reports a change before every poll but the first; `alive` as the event stream says."""

    def __init__(self, alive: bool = True) -> None:
        self.alive = alive
        self.pauses: list[float] = []

    async def next(self, timeout_s: float) -> None:
        self.pauses.append(timeout_s)


async def test_a_reported_change_ends_the_pause_at_once() -> None:
    """With a poll interval of an hour, only the reported changes can finish this wait."""
    script = Script([[lrp(0, U)], [lrp(0, C)], [lrp(0, R)]])
    changes = ScriptedChanges()
    found = await asyncio.wait_for(
        wait_until_running(script.fetch, "web", 1, timeout_s=10_000, poll_interval_s=3600,
                           clock=script.clock, changes=changes),
        timeout=5,
    )
    assert [a.state for a in found] == [R]
    assert script.fetches == 3
    assert len(changes.pauses) == 2


async def test_the_pause_is_the_safety_net_while_events_flow_and_the_usual_one_without() -> None:
    flowing, silent = ScriptedChanges(alive=True), ScriptedChanges(alive=False)
    for changes in (flowing, silent):
        script = Script([[lrp(0, U)], [lrp(0, R)]])
        await wait_until_running(script.fetch, "web", 1, timeout_s=100, poll_interval_s=0.05,
                                 clock=script.clock, changes=changes)
    assert flowing.pauses == [POLL_INTERVAL_WITH_EVENTS_S]
    assert silent.pauses == [0.05]
