"""Autoscaling, step two: the leader's loop that reads the routers' activity, plans
(autoscale_plan.py) and acts: scale the desired count, pause idle instances.

Triggered by every activity change (a router saw a burst, or the last request ended) and by a
timer set to the next idle timeout, so an idle app goes down within a tick of its timeout.
Each action compares the revision it was decided on; the change that made it stale triggers
the next pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import structlog

from lattice.brain.autoscale_db import AutoscaleDB
from lattice.brain.autoscale_plan import ScalePlan, apps_to_scale, combine, plan_autoscale
from lattice.brain.controller import Clock
from lattice.brain.state import ClusterView
from lattice.models.autoscale import Activity
from lattice.store import Change, Etcd, Informer, StoreError, keys

log = structlog.get_logger("lattice.brain.autoscaler")

MAX_SLEEP_S = 0.5       # also picks up instances that became RUNNING (their idle clock starts)


class Autoscaler:
    def __init__(self, *, view: ClusterView, db: AutoscaleDB, etcd: Etcd,
                 clock: Clock = time.time_ns) -> None:
        self._view = view
        self._db = db
        self._clock = clock
        self._activity: dict[str, Activity] = {}      # activity key -> record
        self._changed = asyncio.Event()
        self.informer = Informer(etcd, keys.ACTIVITY, self._on_activity)

    def _on_activity(self, change: Change) -> None:
        if change.new is None:
            self._activity.pop(change.key, None)
        else:
            try:
                self._activity[change.key] = Activity.from_dict(json.loads(change.new))
            except (ValueError, KeyError, TypeError) as exc:
                log.error("record-unreadable", key=change.key, error=str(exc))
                self._activity.pop(change.key, None)
        self._changed.set()

    def activity_by_app(self) -> dict[str, Activity]:
        grouped: dict[str, list[Activity]] = {}
        for key, activity in self._activity.items():
            guid, _ = keys.parse_activity(key)
            grouped.setdefault(guid, []).append(activity)
        return {guid: combine(found) for guid, found in grouped.items()}

    def plan(self, now_ns: int) -> ScalePlan:
        # Only the autoscaled apps' instances are read, from the view's index by app: a pass
        # used to copy a snapshot of every instance of the box, twice a second and on every
        # activity change (a quarter of the brain's time at 100,000 simulated instances).
        desired = {guid: info for guid, info in self._view.desired().items()
                   if info.autoscale is not None}
        actuals = [seen for guid in desired for seen in self._view.instances_of(guid)]
        apps = apps_to_scale(desired, actuals, self.activity_by_app())
        return plan_autoscale(apps, now_ns)

    async def run(self) -> None:
        informer = asyncio.create_task(self.informer.run(), name="autoscaler-activity")
        try:
            await self._view.wait_synced()
            await self.informer.synced.wait()
            while True:
                self._changed.clear()
                timeout = MAX_SLEEP_S
                try:
                    now = self._clock()
                    todo = self.plan(now)
                    await self._act(todo)
                    if todo.wake_at_ns is not None:
                        timeout = min(timeout, max(0.0, (todo.wake_at_ns - now) / 1e9))
                except StoreError as exc:
                    log.warning("autoscale-failed", error=str(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout)
        finally:
            informer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await informer

    async def _act(self, todo: ScalePlan) -> None:
        for decision in todo.decisions:
            guid = decision.process_guid
            if decision.set_instances is not None and await self._db.scale(
                guid, decision.set_instances, tag_index=decision.modification_tag_index
            ):
                log.info("app-scaled", app=guid, instances=decision.set_instances)
            for seen in decision.pause:
                if await self._db.pause(seen):
                    log.info("instance-pausing", app=guid, index=seen.actual.index)
