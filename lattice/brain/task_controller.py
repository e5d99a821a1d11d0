"""Task convergence, step two: act on the plan (task_plan.py).

Woken by any task change and by a timer; one pass at a time. Placement uses the same auction
as instances, over cell loads that count both instances and tasks. Every write is a
compare-and-swap on what the pass read, so a stale pass does nothing wrong. Callbacks run as
their own asyncio tasks, so that a slow receiver holds up no placement.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import structlog

from lattice.brain.auctioneer import auction
from lattice.brain.state import ClusterView
from lattice.brain.task_callback import CallbackPolicy, Delivery, deliver
from lattice.brain.task_plan import TaskPlan, plan_tasks, task_work
from lattice.brain.task_view import TaskView
from lattice.brain.tasks_db import SeenTask, TaskDB
from lattice.models import Task
from lattice.store import StoreError

log = structlog.get_logger("lattice.brain.task_controller")

Clock = Callable[[], int]
# What a completion callback receives for a task (a function's adds its output: invoker.py).
Payload = Callable[[Task], Awaitable[dict[str, Any]]]


async def task_json(task: Task) -> dict[str, Any]:
    return task.to_dict()


@dataclass(frozen=True, kw_only=True)
class TaskSettings:
    interval_s: float = 2.0
    cell_grace_s: float = 6.0              # as the LRP controller: see ControllerSettings
    callback_retry_s: float = 30.0         # after a hand-over that gave up (Diego: 30 s kick)
    callback: CallbackPolicy = field(default_factory=CallbackPolicy)


class TaskController:
    def __init__(
        self, *, tasks: TaskView, view: ClusterView, db: TaskDB, settings: TaskSettings,
        clock: Clock = time.time_ns, payload: Payload = task_json,
    ) -> None:
        self._tasks = tasks
        self._payload = payload
        self._view = view
        self._db = db
        self._settings = settings
        self._clock = clock
        self._started_ns = clock()
        self._callback_due: dict[str, int] = {}
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._session: aiohttp.ClientSession | None = None

    def _cells_trusted(self) -> bool:
        return self._clock() - self._started_ns >= self._settings.cell_grace_s * 1e9

    async def run(self) -> None:
        await self._tasks.informer.synced.wait()
        await self._view.wait_synced()
        self._session = aiohttp.ClientSession()
        try:
            while True:
                self._tasks.dirty.clear()
                try:
                    await self.converge_once()
                except StoreError as exc:
                    log.warning("task-converge-failed", error=str(exc))
                with contextlib.suppress(TimeoutError):
                    # Cells come and go too: a pending task may fit once one appears.
                    await asyncio.wait_for(self._tasks.dirty.wait(), self._settings.interval_s)
        finally:
            for running in self._in_flight.values():
                running.cancel()
            for running in list(self._in_flight.values()):
                with contextlib.suppress(asyncio.CancelledError):
                    await running
            await self._session.close()

    async def converge_once(self) -> None:
        now = self._clock()
        tasks = self._tasks.tasks()
        known = {seen.task.task_guid for seen in tasks}
        for gone in [guid for guid in self._callback_due if guid not in known]:
            del self._callback_due[gone]
        todo = plan_tasks(
            tasks,
            cells=frozenset(self._view.cell_presences()),
            cells_trusted=self._cells_trusted(),
            now_ns=now,
            callback_due=self._callback_due,
            in_flight=frozenset(self._in_flight),
        )
        for seen in todo.lost:
            if await self._db.fail_lost(seen, now):
                log.warning("task-cell-lost", task_guid=seen.task.task_guid,
                            cell=seen.task.cell_id)
        for seen in todo.stuck:
            if await self._db.back_to_completed(seen, now):
                log.info("task-resolving-reset", task_guid=seen.task.task_guid)
        for seen in todo.callbacks:
            self._start_callback(seen)
        if todo.pending:
            await self._auction(todo, now)

    async def _auction(self, todo: TaskPlan, now: int) -> None:
        by_work = {task_work(seen): seen for seen in todo.pending}
        loads = self._view.cell_loads(self._view.snapshot(cells_trusted=True))
        result = auction(loads, list(by_work))
        for item, cell_id in result.placed.items():
            if await self._db.claim(by_work[item], cell_id, now):
                log.info("task-placed", task_guid=item.process_guid, cell=cell_id)
        for item, error in result.failed.items():
            if await self._db.set_placement_error(by_work[item], error, now):
                log.warning("task-placement-failed", task_guid=item.process_guid, error=error)

    # -- completion callbacks ------------------------------------------------------------------

    def _start_callback(self, seen: SeenTask) -> None:
        guid = seen.task.task_guid
        if self._session is None:
            return          # not running: nothing can deliver it now
        self._in_flight[guid] = asyncio.create_task(
            self._hand_over(self._session, seen), name=f"callback-{guid}"
        )

    async def _hand_over(self, session: aiohttp.ClientSession, seen: SeenTask) -> None:
        guid = seen.task.task_guid
        try:
            resolving = await self._db.resolving(seen, self._clock())
            if resolving is None:
                return      # changed meanwhile (deleted, or another brain took it)
            outcome = await deliver(
                session, resolving.task.definition.completion_callback_url,
                await self._payload(resolving.task), self._settings.callback,
            )
            if outcome is Delivery.DELIVERED:
                if await self._db.remove(resolving):
                    log.info("task-resolved", task_guid=guid)
                self._callback_due.pop(guid, None)
            else:
                self._callback_due[guid] = (
                    self._clock() + int(self._settings.callback_retry_s * 1e9)
                )
                await self._db.back_to_completed(resolving, self._clock())
        except StoreError as exc:
            log.warning("task-callback-store-failed", task_guid=guid, error=str(exc))
        finally:
            self._in_flight.pop(guid, None)
            self._tasks.dirty.set()
