"""The rolling update's steps, from snapshots: one replacement at a time, gated on RUNNING."""

from __future__ import annotations

from lattice.brain.converger import Seen, Snapshot, plan, rollout
from lattice.models import ActualLRP, ActualState, ModificationTag, RestartPolicy, SchedulingInfo

R, C, U, X = ActualState.RUNNING, ActualState.CLAIMED, ActualState.UNCLAIMED, ActualState.CRASHED


def info(instances: int, version: int) -> SchedulingInfo:
    return SchedulingInfo("web", instances, 64, 0, 100, (), ModificationTag("e"),
                          run_version=version)


def seen(index: int, state: ActualState, version: int) -> Seen:
    return Seen(ActualLRP("web", index, f"g{index}", state, since=0, cell_id="cell-0",
                          run_version=version), revision=3)


def step(instances: int, version: int, *actuals: tuple[ActualState, int]) -> tuple[
        bool, list[int], bool]:
    found = {i: seen(i, state, v) for i, (state, v) in enumerate(actuals)}
    create, remove, keep = rollout(info(instances, version), found)
    return create, [s.actual.index for s in remove], keep


def test_no_rollout_when_every_instance_runs_the_desired_version() -> None:
    assert step(2, 1, (R, 1), (R, 1)) == (False, [], False)
    assert step(0, 1) == (False, [], False)


def test_the_spare_comes_first() -> None:
    assert step(2, 1, (R, 0), (R, 0)) == (True, [], True)


def test_an_old_instance_goes_only_once_the_spare_runs() -> None:
    assert step(2, 1, (R, 0), (R, 0), (C, 1)) == (False, [], True)
    assert step(2, 1, (R, 0), (R, 0), (R, 1)) == (False, [0], True)


def test_one_replacement_at_a_time() -> None:
    # Index 0 replaced and still starting: index 1 waits.
    assert step(2, 1, (C, 1), (R, 0), (R, 1)) == (False, [], True)
    assert step(2, 1, (R, 1), (R, 0), (R, 1)) == (False, [1], True)


def test_an_old_instance_that_does_not_serve_is_replaced_first() -> None:
    assert step(3, 1, (R, 0), (X, 0), (R, 0), (R, 1)) == (False, [1], True)


def test_the_spare_stays_until_the_last_replacement_runs_then_goes() -> None:
    assert step(2, 1, (R, 1), (C, 1), (R, 1)) == (False, [], True)
    assert step(2, 1, (R, 1), (R, 1), (R, 1)) == (False, [], False)


def test_after_a_scale_down_index_n_goes_even_while_the_others_wait_for_a_cell() -> None:
    # Scaled from 3 to 2 with nothing placed: index 2 is no spare to keep.
    assert step(2, 1, (U, 1), (U, 1), (U, 1)) == (False, [], False)
    assert step(2, 0, (U, 0), (C, 0), (C, 0)) == (False, [], False)


def test_a_spare_of_an_overtaken_version_is_replaced() -> None:
    assert step(1, 2, (R, 1), (R, 1)) == (False, [1], False)


def test_the_plan_keeps_the_spare_and_removes_it_after() -> None:
    policy = RestartPolicy()

    def run(*actuals: Seen) -> tuple[list[tuple[str, int]], list[int]]:
        snap = Snapshot(desired={"web": info(1, 1)},
                        actuals={("web", s.actual.index): s for s in actuals},
                        cells=frozenset({"cell-0"}), assignments=[])
        result = plan(snap, 0, policy)
        return result.create, [s.actual.index for s in result.remove]

    assert run(seen(0, R, 0)) == ([("web", 1)], [])
    assert run(seen(0, R, 0), seen(1, C, 1)) == ([], [])
    assert run(seen(0, R, 0), seen(1, R, 1)) == ([], [0])
    assert run(seen(1, R, 1)) == ([("web", 0)], [])
    assert run(seen(0, U, 1), seen(1, R, 1)) == ([], [])
    assert run(seen(0, R, 1), seen(1, R, 1)) == ([], [1])


def test_a_crashed_spare_is_restarted_like_any_instance() -> None:
    snap = Snapshot(desired={"web": info(1, 1)},
                    actuals={("web", 0): seen(0, R, 0),
                             ("web", 1): seen(1, X, 1)},
                    cells=frozenset({"cell-0"}), assignments=[])
    result = plan(snap, 10**18, RestartPolicy())
    assert [s.actual.index for s in result.restart] == [1]
    assert result.remove == []


def test_the_run_version_survives_the_stored_json() -> None:
    stored = info(2, 3)
    assert SchedulingInfo.from_dict(stored.to_dict()).run_version == 3
    actual = seen(0, R, 3).actual
    assert ActualLRP.from_dict(actual.to_dict()).run_version == 3
