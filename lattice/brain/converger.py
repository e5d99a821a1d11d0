"""Convergence, step one: from a snapshot and the clock, decide what to do. Pure; no I/O.

The controller acts on the plan (step two). Every action names the revisions it was decided
on, so that acting on a stale snapshot fails harmlessly instead of undoing newer work.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lattice.models import ActualLRP, ActualState, RestartPolicy, SchedulingInfo


@dataclass(frozen=True)
class Seen:
    """A record as the snapshot saw it, with the etcd revision it was read at."""

    actual: ActualLRP
    revision: int


@dataclass(frozen=True)
class AssignmentSeen:
    cell_id: str
    process_guid: str
    index: int
    instance_guid: str
    key: str
    revision: int


@dataclass(frozen=True)
class Snapshot:
    desired: dict[str, SchedulingInfo]
    actuals: dict[tuple[str, int], Seen]
    cells: frozenset[str]
    assignments: list[AssignmentSeen]
    cells_trusted: bool = True   # False during the start-up grace: do not declare cells lost yet


@dataclass
class Plan:
    create: list[tuple[str, int]] = field(default_factory=list)        # missing indices
    remove: list[Seen] = field(default_factory=list)                   # extra indices
    restart: list[Seen] = field(default_factory=list)                  # crashed, backoff over
    lost: list[Seen] = field(default_factory=list)                     # on a cell that is gone
    orphans: list[AssignmentSeen] = field(default_factory=list)        # assignments of nothing
    unclaimed: list[Seen] = field(default_factory=list)                # to auction
    wake_at_ns: int | None = None                                      # next delayed restart

    def is_empty(self) -> bool:
        return not (
            self.create or self.remove or self.restart or self.lost or self.orphans
            or self.unclaimed
        )


def plan(snapshot: Snapshot, now_ns: int, policy: RestartPolicy) -> Plan:
    result = Plan()
    for guid, info in snapshot.desired.items():
        for index in range(info.instances):
            if (guid, index) not in snapshot.actuals:
                result.create.append((guid, index))

    for (guid, index), seen in snapshot.actuals.items():
        wanted = snapshot.desired.get(guid)
        actual = seen.actual
        if wanted is None or index >= wanted.instances:
            result.remove.append(seen)
        elif actual.state == ActualState.CRASHED:
            restart_at = policy.restart_at(actual.crash_count, actual.since)
            if restart_at is None:
                continue  # gave up after too many crashes; stays CRASHED for the user to see
            if now_ns >= restart_at:
                result.restart.append(seen)
            elif result.wake_at_ns is None or restart_at < result.wake_at_ns:
                result.wake_at_ns = restart_at
        elif actual.state in (ActualState.CLAIMED, ActualState.RUNNING):
            if snapshot.cells_trusted and actual.cell_id not in snapshot.cells:
                result.lost.append(seen)
        elif actual.state == ActualState.UNCLAIMED:
            result.unclaimed.append(seen)

    for assignment in snapshot.assignments:
        seen_actual = snapshot.actuals.get((assignment.process_guid, assignment.index))
        if (
            seen_actual is None
            or seen_actual.actual.instance_guid != assignment.instance_guid
            or seen_actual.actual.cell_id != assignment.cell_id
            or seen_actual.actual.state not in (ActualState.CLAIMED, ActualState.RUNNING)
        ):
            result.orphans.append(assignment)
    return result
