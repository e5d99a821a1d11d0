"""Convergence, step two: act on the plan, then auction what is unclaimed.

Triggered by any change the ClusterView sees and by a timer; one pass at a time, so triggers
coalesce. Every action is a compare-and-swap on what the snapshot saw, so a pass on stale data
does nothing wrong, and the change that made it stale triggers the next pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from lattice.brain.auctioneer import Work, auction
from lattice.brain.converger import Plan, Snapshot, plan
from lattice.brain.db import LRPDB
from lattice.brain.state import ClusterView
from lattice.models import RestartPolicy
from lattice.store import StoreError

log = structlog.get_logger("lattice.brain.controller")

Clock = Callable[[], int]
CLAIMS_IN_FLIGHT = 32
# Auctions of at most this many (cell, instance) pairs run on the loop: ~0.2 ms at most, as
# the scoring costs ~200 ns a pair (measured on a 2-core CI machine).
INLINE_AUCTION_PAIRS = 1_000
MAX_CATCH_UP_S = 1.0


@dataclass(frozen=True, kw_only=True)
class ControllerSettings:
    converge_interval_s: float = 5.0
    # A brain that has just started has not yet seen every cell's presence; it does not declare
    # cells lost until one lease TTL (plus margin) has passed.
    cell_grace_s: float = 6.0


class Controller:
    def __init__(
        self,
        *,
        view: ClusterView,
        db: LRPDB,
        policy: RestartPolicy,
        settings: ControllerSettings,
        clock: Clock = time.time_ns,
    ) -> None:
        self._view = view
        self._db = db
        self._policy = policy
        self._settings = settings
        self._clock = clock
        self._started_ns = clock()
        # Set after the first pass, so a brain that leads announces itself having converged once.
        self.first_pass_done = asyncio.Event()

    def _cells_trusted(self) -> bool:
        return self._clock() - self._started_ns >= self._settings.cell_grace_s * 1e9

    async def run(self) -> None:
        await self._view.wait_synced()
        while True:
            self._view.dirty.clear()
            wake_at: int | None = None
            began = time.monotonic()
            try:
                wake_at = await self.converge_once()
            except StoreError as exc:
                log.warning("converge-failed", error=str(exc))
            self.first_pass_done.set()
            # A pass is CPU over every instance (tens of ms at 10,000). Woken by each change, the
            # passes would starve the informers of the loop: one watch event per pass, and a lost
            # cell noticed minutes late (bench/scheduler/scale.py). So after a pass the watches
            # get as long again to catch up; on a small box that is well under a millisecond.
            spent = time.monotonic() - began
            timeout = self._settings.converge_interval_s
            if wake_at is not None:
                timeout = min(timeout, max(0.0, (wake_at - self._clock()) / 1e9))
            if not self._cells_trusted():
                timeout = min(timeout, 1.0)
            # asyncio.timeout, not wait_for: wait_for runs the wait in a task of its own, one
            # more turn of the loop between a change and the pass it triggers.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._view.dirty.wait()
            await asyncio.sleep(min(spent, MAX_CATCH_UP_S))

    async def converge_once(self) -> int | None:
        """One pass; returns when the next delayed restart is due (ns), if any."""
        now = self._clock()
        snapshot = self._view.snapshot(cells_trusted=self._cells_trusted())
        todo = plan(snapshot, now, self._policy)
        if not todo.is_empty():
            await self._act(todo, snapshot, now)
        return todo.wake_at_ns

    async def _act(self, todo: Plan, snapshot: Snapshot, now: int) -> None:
        def version(guid: str) -> int:
            info = snapshot.desired.get(guid)
            return 0 if info is None else info.run_version

        missing: dict[str, list[int]] = {}
        for guid, index in todo.create:
            missing.setdefault(guid, []).append(index)
        for guid, indices in missing.items():
            for index in await self._db.create_unclaimed(guid, indices, now,
                                                         run_version=version(guid)):
                log.info("instance-desired", app=guid, index=index)
        for seen in todo.remove:
            app_gone = seen.actual.process_guid not in snapshot.desired
            if await self._db.remove_actual(seen, app_gone=app_gone):
                log.info("instance-removed", app=seen.actual.process_guid, index=seen.actual.index)
        for seen in todo.restart:
            # A restart starts what is desired now: during a rolling update, the new version.
            if await self._db.unclaim(seen, now, run_version=version(seen.actual.process_guid)):
                log.info(
                    "instance-restarting",
                    app=seen.actual.process_guid,
                    index=seen.actual.index,
                    crash_count=seen.actual.crash_count,
                )
        for seen in todo.lost:
            if await self._db.unclaim(seen, now, reason="cell lost", cell_gone=True,
                                      run_version=version(seen.actual.process_guid)):
                log.warning(
                    "instance-cell-lost",
                    app=seen.actual.process_guid,
                    index=seen.actual.index,
                    cell=seen.actual.cell_id,
                )
        for assignment in todo.orphans:
            seen_actual = snapshot.actuals.get((assignment.process_guid, assignment.index))
            revision = 0 if seen_actual is None else seen_actual.revision
            if await self._db.delete_assignment(assignment, revision):
                log.info("assignment-orphan-deleted", key=assignment.key)
        if todo.unclaimed:
            await self._auction(todo, snapshot, now)

    async def _auction(self, todo: Plan, snapshot: Snapshot, now: int) -> None:
        seen_by_work = {}
        work = []
        for seen in todo.unclaimed:
            info = snapshot.desired.get(seen.actual.process_guid)
            if info is None:
                continue
            item = Work(seen.actual.process_guid, seen.actual.index, info.memory_mb, info.disk_mb)
            seen_by_work[item] = seen
            work.append(item)
        loads = self._view.cell_loads(snapshot)
        if len(loads) * len(work) <= INLINE_AUCTION_PAIRS:
            # A small auction (one new app on a few cells) takes less than the hop to a thread
            # and back, which was a tenth to half a millisecond of each placement.
            result = auction(loads, work)
        else:
            # Pure CPU, cells x instances (seconds for 100,000 instances on 1,000 cells): in a
            # thread, so that the loop keeps renewing the leader lease and following the watches.
            result = await asyncio.to_thread(auction, loads, work)
        placed = iter(result.placed.items())
        failures: list[StoreError] = []

        async def claim_next() -> None:
            # Each claim is its own compare-and-swap on one instance, so they may overlap; one
            # at a time, a claim's round trip to etcd would bound placement (~300/s measured).
            for item, cell_id in placed:
                if failures:
                    return
                info = snapshot.desired[item.process_guid]
                try:
                    claimed = await self._db.claim(seen_by_work[item], cell_id, info, now)
                except StoreError as exc:
                    failures.append(exc)
                    return
                if claimed:
                    log.info("instance-placed", app=item.process_guid, index=item.index,
                             cell=cell_id)

        await asyncio.gather(*(claim_next()
                               for _ in range(min(CLAIMS_IN_FLIGHT, len(result.placed)))))
        if failures:
            raise failures[0]
        for item, error in result.failed.items():
            if await self._db.set_placement_error(seen_by_work[item], error):
                log.warning(
                    "instance-placement-failed", app=item.process_guid, index=item.index,
                    error=error,
                )
