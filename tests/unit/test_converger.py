"""Convergence plans from snapshots, with the clock passed in."""

from __future__ import annotations

from lattice.brain.converger import AssignmentSeen, Seen, Snapshot, plan
from lattice.models import (
    ActualLRP,
    ActualState,
    ModificationTag,
    RestartPolicy,
    SchedulingInfo,
)

NS = 1_000_000_000
POLICY = RestartPolicy()


def desired(guid: str, instances: int) -> SchedulingInfo:
    return SchedulingInfo(guid, instances, 64, 0, 100, (), ModificationTag("e"))


def seen(guid: str, index: int, state: ActualState, **kw: object) -> Seen:
    return Seen(ActualLRP(guid, index, f"{guid}-{index}", state, **kw), revision=7)  # type: ignore[arg-type]


def snapshot(desired_: list[SchedulingInfo], actuals: list[Seen], cells: set[str] | None = None,
             assignments: list[AssignmentSeen] | None = None, trusted: bool = True) -> Snapshot:
    return Snapshot(
        desired={d.process_guid: d for d in desired_},
        actuals={(s.actual.process_guid, s.actual.index): s for s in actuals},
        cells=frozenset(cells or {"cell-0"}),
        assignments=assignments or [],
        cells_trusted=trusted,
    )


def test_missing_indices_are_created_and_extra_ones_removed() -> None:
    result = plan(
        snapshot(
            [desired("web", 3), desired("api", 1)],
            [
                seen("web", 0, ActualState.RUNNING, since=0, cell_id="cell-0"),
                seen("api", 0, ActualState.RUNNING, since=0, cell_id="cell-0"),
                seen("api", 1, ActualState.RUNNING, since=0, cell_id="cell-0"),
                seen("gone", 0, ActualState.RUNNING, since=0, cell_id="cell-0"),
            ],
        ),
        now_ns=0,
        policy=POLICY,
    )
    assert result.create == [("web", 1), ("web", 2)]
    assert sorted((s.actual.process_guid, s.actual.index) for s in result.remove) == [
        ("api", 1), ("gone", 0)
    ]


def test_crashed_instances_follow_the_restart_policy() -> None:
    now = 1000 * NS
    result = plan(
        snapshot(
            [desired("web", 4)],
            [
                seen("web", 0, ActualState.CRASHED, since=now, crash_count=1),
                seen("web", 1, ActualState.CRASHED, since=now - 10 * NS, crash_count=3),
                seen("web", 2, ActualState.CRASHED, since=now - 31 * NS, crash_count=3),
                seen("web", 3, ActualState.CRASHED, since=0, crash_count=201),
            ],
        ),
        now_ns=now,
        policy=POLICY,
    )
    assert sorted(s.actual.index for s in result.restart) == [0, 2]
    assert result.wake_at_ns == now + 20 * NS


def test_instances_on_a_lost_cell_are_replaced_but_not_during_the_grace() -> None:
    actuals = [seen("web", 0, ActualState.RUNNING, since=0, cell_id="cell-9")]
    lost = plan(snapshot([desired("web", 1)], actuals), now_ns=0, policy=POLICY).lost
    assert [s.actual.cell_id for s in lost] == ["cell-9"]
    assert plan(snapshot([desired("web", 1)], actuals, trusted=False), 0, POLICY).lost == []


def test_unclaimed_instances_go_to_auction() -> None:
    result = plan(
        snapshot([desired("web", 1)], [seen("web", 0, ActualState.UNCLAIMED, since=0)]),
        now_ns=0,
        policy=POLICY,
    )
    assert [s.actual.index for s in result.unclaimed] == [0]


def test_assignments_that_match_no_claimed_instance_are_orphans() -> None:
    good = AssignmentSeen("cell-0", "web", 0, "web-0", "k0", 3)
    stale_guid = AssignmentSeen("cell-0", "web", 1, "old-guid", "k1", 3)
    nothing = AssignmentSeen("cell-0", "gone", 0, "x", "k2", 3)
    result = plan(
        snapshot(
            [desired("web", 2)],
            [
                seen("web", 0, ActualState.RUNNING, since=0, cell_id="cell-0"),
                seen("web", 1, ActualState.CLAIMED, since=0, cell_id="cell-0"),
            ],
            assignments=[good, stale_guid, nothing],
        ),
        now_ns=0,
        policy=POLICY,
    )
    assert result.orphans == [stale_guid, nothing]
