"""The brain's view of the cluster: informers over the keys the converger and auctioneer read.

Any change marks the view dirty, which wakes the controller: convergence is triggered by events
as well as by its timer.
"""

from __future__ import annotations

import asyncio
import json

from lattice.brain.auctioneer import CellLoad
from lattice.brain.converger import AssignmentSeen, Seen, Snapshot
from lattice.models import ActualLRP, ActualState, CellPresence, SchedulingInfo, ServiceRecord
from lattice.store import Change, Etcd, Informer, keys


class ClusterView:
    def __init__(self, etcd: Etcd) -> None:
        self.dirty = asyncio.Event()
        self.scheduling = Informer(etcd, keys.SCHEDULING, self._changed)
        self.actual = Informer(etcd, keys.ACTUAL, self._changed)
        self.cells = Informer(etcd, keys.CELLS, self._changed)
        self.assignments = Informer(etcd, keys.ASSIGNMENTS, self._changed)
        self.services = Informer(etcd, keys.SERVICES)
        self.informers = (self.scheduling, self.actual, self.cells, self.assignments, self.services)

    def _changed(self, _: Change) -> None:
        self.dirty.set()

    async def wait_synced(self) -> None:
        await asyncio.gather(*(informer.synced.wait() for informer in self.informers))

    def desired(self) -> dict[str, SchedulingInfo]:
        infos = (SchedulingInfo.from_dict(json.loads(v)) for v in self.scheduling.values())
        return {info.process_guid: info for info in infos}

    def cell_presences(self) -> dict[str, CellPresence]:
        cells = (CellPresence.from_dict(json.loads(v)) for v in self.cells.values())
        return {cell.cell_id: cell for cell in cells}

    def service_hostnames(self) -> set[str]:
        names: set[str] = set()
        for value in self.services.values():
            names.update(h.lower() for h in ServiceRecord.from_dict(json.loads(value)).hostnames)
        return names

    def snapshot(self, *, cells_trusted: bool) -> Snapshot:
        actuals: dict[tuple[str, int], Seen] = {}
        for kv in self.actual.items.values():
            actual = ActualLRP.from_dict(json.loads(kv.value))
            actuals[(actual.process_guid, actual.index)] = Seen(actual, kv.mod_revision)
        assignments = []
        for kv in self.assignments.items.values():
            cell_id, guid, index = keys.parse_assignment(kv.key)
            data = json.loads(kv.value)
            assignments.append(
                AssignmentSeen(cell_id, guid, index, data["instance_guid"], kv.key, kv.mod_revision)
            )
        return Snapshot(
            desired=self.desired(),
            actuals=actuals,
            cells=frozenset(self.cell_presences()),
            assignments=assignments,
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
        return sorted(loads.values(), key=lambda load: load.cell_id)
