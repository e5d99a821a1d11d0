"""The brain's storage operations for autoscaling: scale, pause, thaw; each one etcd txn that
compares what it was decided on, so a stale decision changes nothing."""

from __future__ import annotations

import json
from dataclasses import replace

from lattice.brain.converger import Seen
from lattice.brain.db import LRPDB, encode
from lattice.brain.state import ClusterView
from lattice.models import ActualLRP, Assignment, DesiredLRPUpdate
from lattice.models.autoscale import Activity, ColdStarts
from lattice.store import TXN_BATCH, Etcd, ModRevisionIs, Put, keys

SCALE_ATTEMPTS = 5


class NotAutoscaled(Exception):
    """A wake for an app without an autoscale block: its count is the user's to set."""


class AutoscaleDB:
    def __init__(self, etcd: Etcd, lrps: LRPDB, view: ClusterView | None = None) -> None:
        self._etcd = etcd
        self._lrps = lrps
        self._view = view      # the brain's caches: a wake from pause costs one txn, no reads

    async def scale(self, guid: str, instances: int, *, tag_index: int | None = None) -> bool:
        """Set the desired count; with `tag_index`, only if the scheduling info is still the
        one the decision was taken on. False if nothing was written."""
        found = await self._lrps.get_scheduling(guid)
        if found is None:
            return False
        info, revision = found
        if tag_index is not None and info.modification_tag.index != tag_index:
            return False
        if info.instances == instances:
            return False
        return await self._lrps.update_desired(
            guid, info, revision, DesiredLRPUpdate(instances=instances)
        )

    async def wake(self, guid: str) -> tuple[int, int] | None:
        """At least one instance, and every paused one thawed: (instances before, thawed);
        None if the app does not exist. Retries a concurrent change of the scheduling info."""
        fast = await self._wake_from_cache(guid)
        if fast is not None:
            return fast
        for _ in range(SCALE_ATTEMPTS):
            found = await self._lrps.get_scheduling(guid)
            if found is None:
                return None
            info, revision = found
            if info.autoscale is None:
                raise NotAutoscaled(guid)
            if info.instances >= 1 or await self._lrps.update_desired(
                guid, info, revision, DesiredLRPUpdate(instances=1)
            ):
                return info.instances, await self.thaw(guid)
        return info.instances, await self.thaw(guid)

    async def _wake_from_cache(self, guid: str) -> tuple[int, int] | None:
        """The common wake from pause, decided on the brain's caches: the app has instances,
        and each paused one's assignment is rewritten in one txn comparing the revisions the
        caches saw. None (the careful path reads etcd) if the caches have nothing to thaw or
        are stale."""
        if self._view is None:
            return None
        # The app's own records only (the view's index): a wake is on a request's path.
        info = self._view.desired_of(guid)
        if info is None or info.instances < 1 or info.autoscale is None:
            return None
        compare: list[ModRevisionIs] = []
        puts: list[Put] = []
        for seen in self._view.instances_of(guid):
            actual = seen.actual
            if not actual.paused:
                continue
            assignment = self._view.assignment(
                keys.assignment(actual.cell_id, guid, actual.index))
            if assignment is None or assignment.instance_guid != actual.instance_guid:
                return None
            thawed = Assignment(guid, actual.index, actual.instance_guid, info.memory_mb,
                                info.disk_mb, info.cpu_weight)
            compare.append(ModRevisionIs(assignment.key, assignment.revision))
            puts.append(Put(assignment.key, encode(thawed.to_dict())))
        if len(puts) > TXN_BATCH:
            return None     # past one etcd txn (store/batches.py): thaw() asks one at a time
        if not puts or not await self._etcd.txn(compare, puts):
            return None
        return info.instances, len(puts)

    async def thaw(self, guid: str) -> int:
        """Ask each paused instance's cell to thaw it; how many were asked."""
        asked = 0
        for actual, _ in await self._lrps.list_actual(guid):
            if not actual.paused or not actual.cell_id:
                continue
            key = keys.assignment(actual.cell_id, guid, actual.index)
            kv = await self._etcd.get(key)
            if kv is None:
                continue
            assignment = Assignment.from_dict(json.loads(kv.value))
            if not assignment.paused or assignment.instance_guid != actual.instance_guid:
                continue
            thawed = replace(assignment, paused=False)
            if await self._etcd.txn([ModRevisionIs(key, kv.mod_revision)],
                                    [Put(key, encode(thawed.to_dict()))]):
                asked += 1
        return asked

    async def pause(self, seen: Seen) -> bool:
        """Mark the instance paused (the router stops routing to it at once) and ask its cell
        to freeze it, in one txn; False if either record changed since it was seen."""
        actual = seen.actual
        if not actual.cell_id:
            return False
        key = keys.assignment(actual.cell_id, actual.process_guid, actual.index)
        kv = await self._etcd.get(key)
        if kv is None:
            return False
        assignment = Assignment.from_dict(json.loads(kv.value))
        if assignment.instance_guid != actual.instance_guid:
            return False
        actual_key = keys.actual(actual.process_guid, actual.index)
        paused: ActualLRP = replace(actual, paused=True)
        return await self._etcd.txn(
            [ModRevisionIs(actual_key, seen.revision), ModRevisionIs(key, kv.mod_revision)],
            [Put(actual_key, encode(paused.to_dict())),
             Put(key, encode(replace(assignment, paused=True).to_dict()))],
        )

    async def activity(self, guid: str) -> list[Activity]:
        kvs, _ = await self._etcd.get_prefix(keys.activity(guid, ""))
        return [Activity.from_dict(json.loads(kv.value)) for kv in kvs]

    async def cold_starts(self, guid: str) -> ColdStarts:
        kv = await self._etcd.get(keys.cold_starts(guid))
        return ColdStarts() if kv is None else ColdStarts.from_dict(json.loads(kv.value))
