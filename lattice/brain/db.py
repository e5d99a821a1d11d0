"""The brain's storage operations on desired and actual LRPs, each one etcd transaction but
the creation and removal of an app of many instances (split under etcd's limit: see each).

Writes that depend on a read compare the mod_revision of what was read, so a decision taken on
a stale view fails (returns False) instead of overwriting newer state.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace

import structlog

from lattice.brain import route_claims
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
from lattice.store import (
    TXN_BATCH,
    Delete,
    DeletePrefix,
    Etcd,
    GetPrefix,
    KeyValue,
    ModRevisionIs,
    Put,
    batches,
    keys,
)
from lattice.store.etcd import Compare, Exists, Operation

log = structlog.get_logger("lattice.brain.db")


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


def _put_actual(actual: ActualLRP) -> Put:
    return Put(keys.actual(actual.process_guid, actual.index), encode(actual.to_dict()))


def _release_ops(actual: ActualLRP) -> list[Operation]:
    """Operations that take an instance away from the cell it was assigned to, if any."""
    if actual.cell_id:
        return [Delete(keys.assignment(actual.cell_id, actual.process_guid, actual.index))]
    return []


# Told of puts this brain has made, with the store revision they were made at.
WriteListener = Callable[[int, Sequence[Put]], None]


def _actuals(kvs: Sequence[KeyValue]) -> list[tuple[ActualLRP, int]]:
    """ActualLRPs with their mod revisions, by app and index."""
    found = [(ActualLRP.from_dict(json.loads(kv.value)), kv.mod_revision) for kv in kvs]
    return sorted(found, key=lambda pair: (pair[0].process_guid, pair[0].index))


def _samples(kvs: Sequence[KeyValue]) -> dict[tuple[str, int], InstanceMetrics]:
    found: dict[tuple[str, int], InstanceMetrics] = {}
    for kv in kvs:
        try:
            sample = InstanceMetrics.from_dict(json.loads(kv.value))
        except (ValueError, KeyError, TypeError):
            continue      # an unreadable sample is no reason to fail the instance list
        found[(sample.process_guid, sample.index)] = sample
    return found


class LRPDB(route_claims.ClaimsRoutes):
    def __init__(self, etcd: Etcd, *, on_write: WriteListener | None = None) -> None:
        self._etcd = etcd
        # The brain's caches (brain/state.py) learn the writes that give the controller work
        # (a new app, new instances, a claim) from here, without waiting one watch round trip
        # for etcd to send them back: a create is placed ~2 ms sooner, and a pass that follows
        # a claim does not auction the claimed instance again.
        self._on_write = on_write

    async def _txn_learnt(self, compare: Sequence[Compare], ops: Sequence[Operation]) -> bool:
        """`Etcd.txn`, then the puts told to `on_write` if they were written."""
        revision = await self._etcd.txn_revision(compare, ops)
        if revision is None:
            return False
        if self._on_write is not None:
            self._on_write(revision, [op for op in ops if isinstance(op, Put)])
        return True

    # -- desired ------------------------------------------------------------------------------

    async def create_desired(
        self, lrp: DesiredLRP, now_ns: int, *, route_claim: int | None = None
    ) -> bool:
        """Write the desired LRP and its UNCLAIMED instances; False if the guid exists, or if
        `route_claim` is given and route claims moved past it (brain/route_claims.py).

        etcd takes at most MAX_TXN_OPS operations per transaction, so an app of many instances
        is written in several. The first, guarded on the guid being free, holds the desired
        record and the first instances: whoever sees the app sees it whole (scheduling and run
        info together). The rest follow in batches; until they land, the converger sees an app
        with missing indices, which is what it repairs anyway (converger.plan creates every
        missing index < instances), so a brain that dies between batches leaves nothing wrong.
        Each batch writes only keys that do not exist, so it never overwrites an instance the
        converger created (and maybe placed) meanwhile; every index exists before this returns.
        """
        guid = lrp.process_guid
        instances = [
            unclaimed(guid, index, now_ns, lrp.run.version)
            for index in range(lrp.scheduling.instances)
        ]
        compare: list[Compare] = [ModRevisionIs(keys.scheduling(guid), 0)]
        desired_ops: list[Operation] = [
            Put(keys.scheduling(guid), encode(lrp.scheduling.to_dict())),
            Put(keys.run(guid), encode(lrp.run.to_dict())),
        ]
        if route_claim is not None:
            claim_compare, claim_ops = route_claims.guard(route_claim)
            compare += claim_compare
            desired_ops += claim_ops
        # The fixed operations and the first instances together stay within one batch.
        first = TXN_BATCH - len(desired_ops)
        if not await self._txn_learnt(
            compare, [*desired_ops, *(_put_actual(instance) for instance in instances[:first])],
        ):
            return False
        rest = instances[first:]
        if rest:
            await self._create_missing(guid, rest)
        return True

    async def _create_missing(self, guid: str, instances: Sequence[ActualLRP]) -> list[int]:
        """Write those of `instances` whose keys do not exist yet; the indices written.

        A batch compares every key's absence, so one key that exists (the converger was quicker,
        or planned on a view that had not yet seen this app's instances) fails it whole. Then
        the app's keys are read once, the batch is cut to what is missing and tried again, and
        if that fails too (a writer still at work) what is left goes one compare-and-swap per
        instance, at once, each one that exists failing alone. Every write also requires the
        app's desired record: a create planned just before the app was removed writes nothing
        (it would leave instances of no app for a reader to see until the next pass).
        """
        written: list[int] = []
        for batch in batches(instances):
            if await self._create_batch(guid, batch):
                written.extend(a.index for a in batch)
                continue
            existing = {actual.index for actual, _ in await self.list_actual(guid)}
            todo = [a for a in batch if a.index not in existing]
            if not todo:
                continue
            if await self._create_batch(guid, todo):
                written.extend(a.index for a in todo)
                continue
            alone = await asyncio.gather(*(self._create_one(a) for a in todo))
            written.extend(a.index for a, ok in zip(todo, alone, strict=True) if ok)
        return written

    async def _create_batch(self, guid: str, batch: Sequence[ActualLRP]) -> bool:
        compare: list[Compare] = [Exists(keys.scheduling(guid))]
        compare += [ModRevisionIs(keys.actual(guid, a.index), 0) for a in batch]
        return await self._txn_learnt(compare, [_put_actual(a) for a in batch])

    async def _create_one(self, actual: ActualLRP) -> bool:
        key = keys.actual(actual.process_guid, actual.index)
        return await self._txn_learnt(
            [Exists(keys.scheduling(actual.process_guid)), ModRevisionIs(key, 0)],
            [_put_actual(actual)],
        )

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
        run: RunInfo | None = None, *, route_claim: int | None = None,
    ) -> bool:
        """Apply `update` to the scheduling info read at `revision`; False on a conflict, or
        if `route_claim` is given and route claims moved past it (brain/route_claims.py).

        A new image or env writes a new run info, one version up, in the same transaction:
        the converger then rolls the instances over to it.
        """
        new_run = None if run is None else update.apply_run(run, info)
        changed = update.apply(info, new_run)
        ops: list[Operation] = [Put(keys.scheduling(guid), encode(changed.to_dict()))]
        if new_run is not None:
            ops.append(Put(keys.run(guid), encode(new_run.to_dict())))
        compare: list[Compare] = [ModRevisionIs(keys.scheduling(guid), revision)]
        if route_claim is not None:
            claim_compare, claim_ops = route_claims.guard(route_claim)
            compare += claim_compare
            ops += claim_ops
        return await self._txn_learnt(compare, ops)

    async def delete_desired(self, guid: str) -> None:
        """Remove the app: its desired record and instances at once, then the cells' work.

        The first transaction (a fixed handful of operations: the instances go as one prefix)
        takes the app out of every reader's view in one revision: the router drops its routes
        and endpoints, the converger sees neither a desired LRP without instances nor instances
        without one. The cells' assignments, one key per placed instance, follow in batches
        (etcd's MAX_TXN_OPS), in the order the converger removes an instance: the router has
        dropped it before its cell drains it. An assignment left behind by a brain that dies
        between batches is an orphan (its ActualLRP is gone), which the converger deletes.

        Each batch requires the app to be still absent: an app created again under the same
        name may already have placed an index on the same cell, at the same assignment key,
        and that assignment is the new app's. The batches stop there; what is left of the old
        app (another instance_guid than the new ActualLRP's) is an orphan too.
        """
        actuals = await self.list_actual(guid)
        await self._etcd.txn([], [
            Delete(keys.scheduling(guid)),
            Delete(keys.run(guid)),
            DeletePrefix(keys.actual_prefix(guid)),
            Delete(keys.cold_starts(guid)),
            DeletePrefix(keys.activity(guid, "")),
        ])
        releases = [op for actual, _ in actuals for op in _release_ops(actual)]
        app_absent = ModRevisionIs(keys.scheduling(guid), 0)
        for batch in batches(releases):
            if not await self._etcd.txn([app_absent], batch):
                log.info("app-recreated-during-removal", app=guid)
                return

    # -- actual -------------------------------------------------------------------------------

    async def list_actual(self, guid: str | None = None) -> list[tuple[ActualLRP, int]]:
        prefix = keys.ACTUAL if guid is None else keys.actual_prefix(guid)
        kvs, _ = await self._etcd.get_prefix(prefix)
        return _actuals(kvs)

    async def list_actual_with_metrics(
        self, guid: str | None = None
    ) -> tuple[list[tuple[ActualLRP, int]], dict[tuple[str, int], InstanceMetrics]]:
        """`list_actual` and the cells' last container samples by (process_guid, index), in
        one round trip to etcd (ltc's wait reads them at each change of its app), at one
        revision."""
        actual_prefix = keys.ACTUAL if guid is None else keys.actual_prefix(guid)
        metrics_prefix = keys.METRICS if guid is None else keys.metrics_prefix(guid)
        actuals, samples = await self._etcd.read([GetPrefix(actual_prefix),
                                                  GetPrefix(metrics_prefix)])
        return _actuals(actuals), _samples(samples)

    async def create_unclaimed(
        self, guid: str, indices: Sequence[int], now_ns: int, *, run_version: int = 0
    ) -> list[int]:
        """UNCLAIMED instances at those of `indices` that do not exist; the indices written.
        In batches under etcd's limit: a scale from 10 to 1,000 is ten transactions, not 990."""
        return await self._create_missing(
            guid, [unclaimed(guid, index, now_ns, run_version) for index in indices]
        )

    async def remove_actual(self, seen: Seen, *, app_gone: bool = False) -> bool:
        """Delete the instance as it was seen. `app_gone`: it is removed because the snapshot
        had no desired LRP for it; then only if etcd has none either. The brain's caches follow
        each prefix on its own watch, so a new app's instances can reach the snapshot before
        its desired record does: without the check, the converger deleted a just-created app's
        instances (and created them again a pass later)."""
        actual = seen.actual
        key = keys.actual(actual.process_guid, actual.index)
        compare = [ModRevisionIs(key, seen.revision)]
        if app_gone:
            compare.append(ModRevisionIs(keys.scheduling(actual.process_guid), 0))
        return await self._etcd.txn(compare, [Delete(key), *_release_ops(actual)])

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
        return await self._txn_learnt(
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
