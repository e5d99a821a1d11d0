"""The brain's view of the cluster: informers over the keys the converger and auctioneer read.

Records are decoded once, when they change, not on every convergence pass: a pass over 100,000
instances must not parse 100,000 JSON documents. Any change marks the view dirty, which wakes
the controller: convergence is triggered by events as well as by its timer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import structlog

from lattice.brain.auctioneer import CellLoad
from lattice.brain.converger import AssignmentSeen, Seen, Snapshot
from lattice.models import ActualLRP, ActualState, CellPresence, SchedulingInfo, ServiceRecord
from lattice.store import Change, Etcd, Informer, Put, keys

log = structlog.get_logger("lattice.brain.state")

T = TypeVar("T")


def _decoding(target: dict[str, T], decode: Callable[[str, bytes, int], T],
              then: Callable[[], None]) -> Callable[[Change], None]:
    """A change handler that keeps `target` (key -> decoded record) in step with etcd."""

    def on_change(change: Change) -> None:
        if change.new is None:
            target.pop(change.key, None)
        else:
            try:
                target[change.key] = decode(change.key, change.new, change.revision)
            except (ValueError, KeyError, TypeError) as exc:
                # A record this brain cannot read is left out, loudly, rather than crashing
                # every convergence pass.
                log.error("record-unreadable", key=change.key, error=str(exc))
                target.pop(change.key, None)
        then()

    return on_change


def _scheduling(_: str, value: bytes, __: int) -> SchedulingInfo:
    return SchedulingInfo.from_dict(json.loads(value))


def _actual(_: str, value: bytes, revision: int) -> Seen:
    return Seen(ActualLRP.from_dict(json.loads(value)), revision)


def _cell(_: str, value: bytes, __: int) -> CellPresence:
    return CellPresence.from_dict(json.loads(value))


def _assignment(key: str, value: bytes, revision: int) -> AssignmentSeen:
    cell_id, guid, index = keys.parse_assignment(key)
    return AssignmentSeen(cell_id, guid, index, json.loads(value)["instance_guid"], key, revision)


def _service(_: str, value: bytes, __: int) -> ServiceRecord:
    return ServiceRecord.from_dict(json.loads(value))


class ClusterView:
    def __init__(self, etcd: Etcd) -> None:
        self.dirty = asyncio.Event()
        self._desired: dict[str, SchedulingInfo] = {}
        self._actuals: dict[str, Seen] = {}
        self._cells: dict[str, CellPresence] = {}
        self._assignments: dict[str, AssignmentSeen] = {}
        self._services: dict[str, ServiceRecord] = {}
        mark = self.dirty.set
        self.scheduling = Informer(etcd, keys.SCHEDULING,
                                   _decoding(self._desired, _scheduling, mark))
        # The same instances by app, for readers of one app (the autoscaler, a wake): without
        # it each read copied every instance of the box (100,000 at bench/scheduler/scale.py).
        self._actuals_by_app: dict[str, dict[str, Seen]] = {}
        decode_actual = _decoding(self._actuals, _actual, mark)

        def on_actual(change: Change) -> None:
            decode_actual(change)
            self._index_actual(change.key)

        self.actual = Informer(etcd, keys.ACTUAL, on_actual)
        self.cells = Informer(etcd, keys.CELLS, _decoding(self._cells, _cell, mark))
        self.assignments = Informer(etcd, keys.ASSIGNMENTS,
                                    _decoding(self._assignments, _assignment, mark))
        self.services = Informer(etcd, keys.SERVICES,
                                 _decoding(self._services, _service, lambda: None))
        self.informers = (self.scheduling, self.actual, self.cells, self.assignments, self.services)
        self._learning = (self.scheduling, self.actual, self.assignments)
        # Other work holding resources on cells, as (cell_id, memory_mb, disk_mb) each taking one
        # container slot: tasks (brain/task_view.py) set this.
        self.extra_usage: Callable[[], Iterable[tuple[str, int, int]]] = lambda: ()

    def learn(self, revision: int, puts: Sequence[Put]) -> None:
        """Puts this brain made at store `revision` (brain/db.py), taken into the caches they
        belong to now rather than when the watch brings them back: the controller, woken by
        the change, then places a new app's instances one watch round trip sooner. Each cache
        ignores a write its watch has already passed (store/informer.py)."""
        for put in puts:
            for informer in self._learning:
                if put.key.startswith(informer.prefix):
                    informer.learn(put.key, put.value, revision)
                    break

    def _index_actual(self, key: str) -> None:
        guid = key[len(keys.ACTUAL):].rpartition("/")[0]
        seen = self._actuals.get(key)
        if seen is not None:
            self._actuals_by_app.setdefault(guid, {})[key] = seen
            return
        app = self._actuals_by_app.get(guid)
        if app is not None:
            app.pop(key, None)
            if not app:
                del self._actuals_by_app[guid]

    def instances_of(self, guid: str) -> list[Seen]:
        """The app's ActualLRPs as the cache holds them: O(the app's instances)."""
        return list(self._actuals_by_app.get(guid, {}).values())

    def desired_of(self, guid: str) -> SchedulingInfo | None:
        return self._desired.get(keys.scheduling(guid))

    def assignment(self, key: str) -> AssignmentSeen | None:
        return self._assignments.get(key)

    async def wait_synced(self) -> None:
        await asyncio.gather(*(informer.synced.wait() for informer in self.informers))

    def desired(self) -> dict[str, SchedulingInfo]:
        return {info.process_guid: info for info in self._desired.values()}

    def cell_presences(self) -> dict[str, CellPresence]:
        return {cell.cell_id: cell for cell in self._cells.values()}

    def service_hostnames(self, *, excluding: str = "") -> set[str]:
        """Host names of the box's service records, but those of the service `excluding`."""
        return {h.lower() for record in self._services.values() for h in record.hostnames
                if record.name != excluding}

    def snapshot(self, *, cells_trusted: bool) -> Snapshot:
        return Snapshot(
            desired=self.desired(),
            actuals={(s.actual.process_guid, s.actual.index): s for s in self._actuals.values()},
            cells=frozenset(self.cell_presences()),
            assignments=list(self._assignments.values()),
            cells_trusted=cells_trusted,
        )

    def cell_loads(self, snapshot: Snapshot) -> list[CellLoad]:
        """Each present cell with what its CLAIMED and RUNNING instances already use."""
        loads = {
            cell.cell_id: CellLoad(
                cell.cell_id,
                cell.capacity.memory_mb,
                cell.capacity.disk_mb,
                cell.capacity.containers,
            )
            for cell in self.cell_presences().values()
        }
        for seen in snapshot.actuals.values():
            actual = seen.actual
            load = loads.get(actual.cell_id)
            info = snapshot.desired.get(actual.process_guid)
            if load is None or actual.state not in (ActualState.CLAIMED, ActualState.RUNNING):
                continue
            load.used_memory_mb += info.memory_mb if info else 0
            load.used_disk_mb += info.disk_mb if info else 0
            load.used_containers += 1
            load.instances_by_app[actual.process_guid] = (
                load.instances_by_app.get(actual.process_guid, 0) + 1
            )
        for cell_id, memory_mb, disk_mb in self.extra_usage():
            extra = loads.get(cell_id)
            if extra is not None:
                extra.used_memory_mb += memory_mb
                extra.used_disk_mb += disk_mb
                extra.used_containers += 1
        return sorted(loads.values(), key=lambda load: load.cell_id)
