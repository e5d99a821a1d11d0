"""The brain's storage operations on desired and actual LRPs, each one etcd transaction.

Writes that depend on a read compare the mod_revision of what was read, so a decision taken on
a stale view fails (returns False) instead of overwriting newer state.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace

from lattice.brain.converger import AssignmentSeen, Seen
from lattice.models import (
    ActualLRP,
    ActualState,
    Assignment,
    DesiredLRP,
    DesiredLRPUpdate,
    RunInfo,
    SchedulingInfo,
)
from lattice.models.metrics import InstanceMetrics
from lattice.store import Delete, DeletePrefix, Etcd, ModRevisionIs, Put, keys
from lattice.store.etcd import Operation


def encode(data: object) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def new_instance_guid() -> str:
    return uuid.uuid4().hex


def unclaimed(process_guid: str, index: int, now_ns: int, run_version: int = 0) -> ActualLRP:
    return ActualLRP(
        process_guid=process_guid,
        index=index,
        instance_guid=new_instance_guid(),
        state=ActualState.UNCLAIMED,
        since=now_ns,
        run_version=run_version,
    )


def _release_ops(actual: ActualLRP) -> list[Operation]:
    """Operations that take an instance away from the cell it was assigned to, if any."""
    if actual.cell_id:
        return [Delete(keys.assignment(actual.cell_id, actual.process_guid, actual.index))]
    return []


class LRPDB:
    def __init__(self, etcd: Etcd) -> None:
        self._etcd = etcd

    # -- desired ------------------------------------------------------------------------------

    async def create_desired(self, lrp: DesiredLRP, now_ns: int) -> bool:
        """Write the desired LRP and its UNCLAIMED instances; False if the guid exists."""
        guid = lrp.process_guid
        ops: list[Operation] = [
            Put(keys.scheduling(guid), encode(lrp.scheduling.to_dict())),
            Put(keys.run(guid), encode(lrp.run.to_dict())),
        ]
        for index in range(lrp.scheduling.instances):
            instance = unclaimed(guid, index, now_ns, lrp.run.version)
            ops.append(Put(keys.actual(guid, index), encode(instance.to_dict())))
        return await self._etcd.txn([ModRevisionIs(keys.scheduling(guid), 0)], ops)

    async def get_scheduling(self, guid: str) -> tuple[SchedulingInfo, int] | None:
        kv = await self._etcd.get(keys.scheduling(guid))
        if kv is None:
            return None
        return SchedulingInfo.from_dict(json.loads(kv.value)), kv.mod_revision

    async def get_desired(self, guid: str) -> DesiredLRP | None:
        found = await self.get_scheduling(guid)
        run = await self._etcd.get(keys.run(guid))
        if found is None or run is None:
            return None
        return DesiredLRP(found[0], RunInfo.from_dict(json.loads(run.value)))

    async def list_desired(self) -> list[DesiredLRP]:
        scheduling, _ = await self._etcd.get_prefix(keys.SCHEDULING)
        runs, _ = await self._etcd.get_prefix(keys.RUN)
        run_by_guid = {
            kv.key[len(keys.RUN):]: RunInfo.from_dict(json.loads(kv.value)) for kv in runs
        }
        result = []
        for kv in scheduling:
            info = SchedulingInfo.from_dict(json.loads(kv.value))
            run = run_by_guid.get(info.process_guid)
            if run is not None:
                result.append(DesiredLRP(info, run))
        return sorted(result, key=lambda lrp: lrp.process_guid)

    async def update_desired(
        self, guid: str, info: SchedulingInfo, revision: int, update: DesiredLRPUpdate,
        run: RunInfo | None = None,
    ) -> bool:
        """Apply `update` to the scheduling info read at `revision`; False on a conflict.

        A new image or env writes a new run info, one version up, in the same transaction:
        the converger then rolls the instances over to it.
        """
        new_run = None if run is None else update.apply_run(run, info)
        changed = update.apply(info, new_run)
        ops: list[Operation] = [Put(keys.scheduling(guid), encode(changed.to_dict()))]
        if new_run is not None:
            ops.append(Put(keys.run(guid), encode(new_run.to_dict())))
        return await self._etcd.txn([ModRevisionIs(keys.scheduling(guid), revision)], ops)

    async def delete_desired(self, guid: str) -> None:
        actuals = await self.list_actual(guid)
        ops: list[Operation] = [
            Delete(keys.scheduling(guid)),
            Delete(keys.run(guid)),
            DeletePrefix(keys.actual_prefix(guid)),
            Delete(keys.cold_starts(guid)),
            DeletePrefix(keys.activity(guid, "")),
        ]
        for actual, _ in actuals:
            ops.extend(_release_ops(actual))
        await self._etcd.txn([], ops)

    # -- actual -------------------------------------------------------------------------------

    async def list_actual(self, guid: str | None = None) -> list[tuple[ActualLRP, int]]:
        prefix = keys.ACTUAL if guid is None else keys.actual_prefix(guid)
        kvs, _ = await self._etcd.get_prefix(prefix)
        found = [(ActualLRP.from_dict(json.loads(kv.value)), kv.mod_revision) for kv in kvs]
        return sorted(found, key=lambda pair: (pair[0].process_guid, pair[0].index))

    async def list_metrics(
        self, guid: str | None = None
    ) -> dict[tuple[str, int], InstanceMetrics]:
        """The cells' last container samples, by (process_guid, index)."""
        prefix = keys.METRICS if guid is None else keys.metrics_prefix(guid)
        kvs, _ = await self._etcd.get_prefix(prefix)
        found: dict[tuple[str, int], InstanceMetrics] = {}
        for kv in kvs:
            try:
                sample = InstanceMetrics.from_dict(json.loads(kv.value))
            except (ValueError, KeyError, TypeError):
                continue      # an unreadable sample is no reason to fail the instance list
            found[(sample.process_guid, sample.index)] = sample
        return found

    async def create_unclaimed(
        self, guid: str, index: int, now_ns: int, *, run_version: int = 0
    ) -> bool:
        key = keys.actual(guid, index)
        fresh = unclaimed(guid, index, now_ns, run_version)
        return await self._etcd.txn([ModRevisionIs(key, 0)], [Put(key, encode(fresh.to_dict()))])

    async def remove_actual(self, seen: Seen) -> bool:
        actual = seen.actual
        key = keys.actual(actual.process_guid, actual.index)
        return await self._etcd.txn(
            [ModRevisionIs(key, seen.revision)], [Delete(key), *_release_ops(actual)]
        )

    async def unclaim(
        self, seen: Seen, now_ns: int, *, reason: str = "", cell_gone: bool = False,
        run_version: int | None = None,
    ) -> bool:
        """Back to UNCLAIMED with a new instance guid, so that the auction places it again.

        The crash count and reason stay, so the user still sees the crash and the restart policy
        keeps counting.
        """
        actual = seen.actual
        fresh = actual.transition(
            ActualState.UNCLAIMED,
            now_ns,
            instance_guid=new_instance_guid(),
            cell_id="",
            address="",
            ports=(),
            container_id="",
            placement_error="",
            crash_reason=reason or actual.crash_reason,
            run_version=actual.run_version if run_version is None else run_version,
            paused=False,
        )
        key = keys.actual(actual.process_guid, actual.index)
        compare = [ModRevisionIs(key, seen.revision)]
        if cell_gone:
            # Only re-place a lost cell's instance if the cell has really not come back.
            compare.append(ModRevisionIs(keys.cell(actual.cell_id), 0))
        return await self._etcd.txn(
            compare, [Put(key, encode(fresh.to_dict())), *_release_ops(actual)]
        )

    async def claim(self, seen: Seen, cell_id: str, info: SchedulingInfo, now_ns: int) -> bool:
        """CLAIMED on `cell_id`, and the cell's assignment written in the same transaction."""
        actual = seen.actual
        claimed = actual.transition(
            ActualState.CLAIMED, now_ns, cell_id=cell_id, placement_error=""
        )
        assignment = Assignment(
            process_guid=actual.process_guid,
            index=actual.index,
            instance_guid=actual.instance_guid,
            memory_mb=info.memory_mb,
            disk_mb=info.disk_mb,
            cpu_weight=info.cpu_weight,
        )
        key = keys.actual(actual.process_guid, actual.index)
        return await self._etcd.txn(
            [ModRevisionIs(key, seen.revision)],
            [
                Put(key, encode(claimed.to_dict())),
                Put(keys.assignment(cell_id, actual.process_guid, actual.index),
                    encode(assignment.to_dict())),
            ],
        )

    async def set_placement_error(self, seen: Seen, error: str) -> bool:
        """Record why an instance cannot be placed; False if nothing was written."""
        if seen.actual.placement_error == error:
            return False
        key = keys.actual(seen.actual.process_guid, seen.actual.index)
        updated = replace(seen.actual, placement_error=error)
        return await self._etcd.txn(
            [ModRevisionIs(key, seen.revision)], [Put(key, encode(updated.to_dict()))]
        )

    async def delete_assignment(self, assignment: AssignmentSeen, actual_revision: int) -> bool:
        actual_key = keys.actual(assignment.process_guid, assignment.index)
        return await self._etcd.txn(
            [
                ModRevisionIs(assignment.key, assignment.revision),
                ModRevisionIs(actual_key, actual_revision),
            ],
            [Delete(assignment.key)],
        )
