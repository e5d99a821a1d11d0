"""The cell's writes to the ActualLRP of an instance it runs: started, RUNNING, CRASHED.

Each write re-reads the record and applies only if the instance is still this cell's (same
instance_guid and cell_id, CLAIMED or RUNNING), in a transaction comparing the record's
mod_revision; on a conflict it reads again and decides again. When the instance is no longer
ours (the brain re-placed or removed it) nothing is written and the caller drops its container.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace

import structlog

from lattice.cell.errors import CellError
from lattice.models import (
    DEFAULT_RESTART_POLICY,
    ActualLRP,
    ActualState,
    Assignment,
    PortMapping,
    RestartPolicy,
    RunInfo,
)
from lattice.store import Delete, Etcd, ModRevisionIs, Put, keys
from lattice.store.etcd import Operation

log = structlog.get_logger("lattice.cell.reports")

Clock = Callable[[], int]
MAX_ATTEMPTS = 20
_LIVE = (ActualState.CLAIMED, ActualState.RUNNING)


class ReportConflict(CellError):
    """Others kept writing the record between every read and write; give up for now."""


def encode(data: object) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def is_ours(actual: ActualLRP, assignment: Assignment, cell_id: str) -> bool:
    return (
        actual.instance_guid == assignment.instance_guid
        and actual.cell_id == cell_id
        and actual.state in _LIVE
    )


class ActualReports:
    def __init__(
        self,
        etcd: Etcd,
        cell_id: str,
        *,
        policy: RestartPolicy = DEFAULT_RESTART_POLICY,
        clock: Clock = time.time_ns,
    ) -> None:
        self._etcd = etcd
        self._cell_id = cell_id
        self._policy = policy
        self._clock = clock

    async def run_info(self, process_guid: str) -> RunInfo | None:
        kv = await self._etcd.get(keys.run(process_guid))
        return None if kv is None else RunInfo.from_dict(json.loads(kv.value))

    async def current(self, assignment: Assignment) -> ActualLRP | None:
        """The instance's record if it is still ours, else None."""
        found = await self.read(assignment)
        return None if found is None else found[0]

    async def read(self, assignment: Assignment) -> tuple[ActualLRP, int] | None:
        """The instance's record and its mod_revision if it is still ours, else None. A
        later write may start from it (`known`) instead of reading the record again."""
        kv = await self._etcd.get(keys.actual(assignment.process_guid, assignment.index))
        if kv is None:
            return None
        actual = ActualLRP.from_dict(json.loads(kv.value))
        if not is_ours(actual, assignment, self._cell_id):
            return None
        return actual, kv.mod_revision

    async def _update(
        self,
        assignment: Assignment,
        change: Callable[[ActualLRP, int], ActualLRP],
        extra: list[Operation] | None = None,
        known: tuple[ActualLRP, int] | None = None,
    ) -> ActualLRP | None:
        """Apply `change` to our record; the record written, or None if it is not ours.

        `known` (a record and its revision read earlier) saves the first read: if the record
        changed since, the txn's revision compare fails and the loop reads it as usual.
        """
        key = keys.actual(assignment.process_guid, assignment.index)
        for _ in range(MAX_ATTEMPTS):
            from_known = known is not None
            found = known if known is not None else await self.read(assignment)
            known = None
            if found is None:
                return None
            actual, revision = found
            updated = change(actual, self._clock())
            if updated == actual and not extra:
                if from_known:
                    continue      # nothing to write: first make sure the record is still this
                return actual
            ops: list[Operation] = [Put(key, encode(updated.to_dict())), *(extra or [])]
            if await self._etcd.txn([ModRevisionIs(key, revision)], ops):
                return updated
            log.debug("actual-conflict", key=key)
        raise ReportConflict(f"{key} kept changing under {MAX_ATTEMPTS} attempts to write it")

    async def started(
        self, assignment: Assignment, address: str, ports: tuple[PortMapping, ...],
        container_id: str, *, adopted: bool, run_version: int | None = None,
        healthy: bool = False, known: tuple[ActualLRP, int] | None = None,
    ) -> ActualLRP | None:
        """Record where the instance can be reached.

        An adopted container keeps its state. A new one is CLAIMED until its health check
        passes, even if the record still says RUNNING from a container that is gone: otherwise
        the router would send requests to a process that is not listening yet. A new one whose
        check `healthy` passed already is RUNNING in the same write, as if `running` followed.
        """
        def change(actual: ActualLRP, now: int) -> ActualLRP:
            state = actual.state if adopted else ActualState.CLAIMED
            version = actual.run_version if run_version is None else run_version
            placed = actual.transition(
                state, now, address=address, ports=ports, container_id=container_id,
                run_version=version, paused=actual.paused and adopted,
            )
            if healthy and not adopted:
                return placed.transition(ActualState.RUNNING, now, running_since=now)
            return placed
        return await self._update(assignment, change, known=known)

    async def thawed(self, assignment: Assignment) -> ActualLRP | None:
        """The container runs again after a pause: routable again."""
        def change(actual: ActualLRP, now: int) -> ActualLRP:
            return actual if not actual.paused else replace(actual, paused=False)
        return await self._update(assignment, change)

    async def pausing(self, assignment: Assignment) -> ActualLRP | None:
        """About to freeze the container: not routable from now on. The brain marks this with
        its pause already; this covers a container started anew under a paused assignment."""
        def change(actual: ActualLRP, now: int) -> ActualLRP:
            return actual if actual.paused else replace(actual, paused=True)
        return await self._update(assignment, change)

    async def container_gone(self, assignment: Assignment) -> ActualLRP | None:
        """The instance's container no longer exists (the box was restarted): it is CLAIMED,
        with no address, until a new container is started, so nobody routes to the old ports."""
        def change(actual: ActualLRP, now: int) -> ActualLRP:
            if actual.state == ActualState.CLAIMED and not actual.address:
                return actual
            return actual.transition(
                ActualState.CLAIMED, now, address="", ports=(), container_id=""
            )
        return await self._update(assignment, change)

    async def running(self, assignment: Assignment) -> ActualLRP | None:
        def change(actual: ActualLRP, now: int) -> ActualLRP:
            if actual.state == ActualState.RUNNING:
                return actual
            return actual.transition(ActualState.RUNNING, now, running_since=now)
        return await self._update(assignment, change)

    async def crashed(self, assignment: Assignment, reason: str) -> ActualLRP | None:
        """CRASHED with the new crash count, and this cell's assignment deleted, atomically.

        The brain then applies the restart policy; the cell never restarts an instance itself.
        """
        def change(actual: ActualLRP, now: int) -> ActualLRP:
            running_for = now - actual.running_since if actual.state == ActualState.RUNNING else 0
            count = self._policy.crash_count_after_crash(actual.crash_count, running_for)
            return actual.transition(
                ActualState.CRASHED, now, crash_count=count, crash_reason=reason,
                address="", ports=(), container_id="", paused=False,
            )
        assignment_key = keys.assignment(self._cell_id, assignment.process_guid, assignment.index)
        return await self._update(assignment, change, [Delete(assignment_key)])
