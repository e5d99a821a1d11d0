"""Convergence, step one: from a snapshot and the clock, decide what to do. Pure; no I/O.

The controller acts on the plan (step two). Every action names the revisions it was decided
on, so that acting on a stale snapshot fails harmlessly instead of undoing newer work.

A rolling update (the desired `run_version` moved on; some index < N runs an older version)
keeps one extra instance, the spare, at index N, started with the new version:

    spare missing                                   -> create it (new version)
    spare RUNNING, every index < N present, every
    new-version index < N RUNNING                   -> remove one old index; the next pass
                                                       creates it again, new version
    no old index left, none < N starting            -> remove the spare

So at most one index is being replaced at a time, only once a new instance has passed its
health check, and the app never has fewer RUNNING instances than before the update. Removal
deletes the ActualLRP first, so the router drops the instance before the cell drains it.
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


_STARTING = (ActualState.UNCLAIMED, ActualState.CLAIMED)


def rollout(info: SchedulingInfo, instances: dict[int, Seen]) -> tuple[bool, list[Seen], bool]:
    """One app's rolling-update step: (create the spare?, what to remove, keep the spare?)."""
    count, version = info.instances, info.run_version
    if count == 0:
        return False, [], False
    below = [instances[i] for i in range(count) if i in instances]
    old = [s for s in below if s.actual.run_version != version]
    spare = instances.get(count)
    if not old:
        starting = len(below) < count or any(s.actual.state in _STARTING for s in below)
        # Only a RUNNING spare is kept: it holds the capacity of the last replacement until
        # that one runs. Index N after a plain scale-down looks the same as a spare (same
        # version); were it kept while it does not run either, an app scaled down while its
        # instances wait for a cell would keep one instance too many for as long.
        keep = (spare is not None and starting and spare.actual.run_version == version
                and spare.actual.state == ActualState.RUNNING)
        return False, [], keep
    if spare is None:
        return True, [], True
    if spare.actual.run_version != version:
        return False, [spare], False   # from an update that was overtaken by this one
    new_ready = all(
        s.actual.state == ActualState.RUNNING for s in below if s.actual.run_version == version
    )
    if spare.actual.state == ActualState.RUNNING and len(below) == count and new_ready:
        # An old instance that does not serve goes first: its removal costs no capacity.
        victim = min(old, key=lambda s: (s.actual.state == ActualState.RUNNING, s.actual.index))
        return False, [victim], True
    return False, [], True


def plan(snapshot: Snapshot, now_ns: int, policy: RestartPolicy) -> Plan:
    result = Plan()
    by_app: dict[str, dict[int, Seen]] = {}
    for (guid, index), seen in snapshot.actuals.items():
        by_app.setdefault(guid, {})[index] = seen
    spares: set[tuple[str, int]] = set()
    rolled: set[tuple[str, int]] = set()
    for guid, info in snapshot.desired.items():
        for index in range(info.instances):
            if (guid, index) not in snapshot.actuals:
                result.create.append((guid, index))
        create_spare, remove, keep_spare = rollout(info, by_app.get(guid, {}))
        if create_spare:
            result.create.append((guid, info.instances))
        if keep_spare:
            spares.add((guid, info.instances))
        result.remove.extend(remove)
        rolled.update((guid, s.actual.index) for s in remove)

    for (guid, index), seen in snapshot.actuals.items():
        wanted = snapshot.desired.get(guid)
        actual = seen.actual
        if (guid, index) in rolled:
            continue
        if wanted is None or (index >= wanted.instances and (guid, index) not in spares):
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
