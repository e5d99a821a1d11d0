"""The brain's cache of every task, kept by an informer; what tasks use on each cell.

Tasks take memory, disk and a container slot on their cell from the claim until they complete,
so the auction of instances counts them too (`ClusterView.extra_usage`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import structlog

from lattice.brain.tasks_db import SeenTask
from lattice.models import Task, TaskState
from lattice.store import Change, Etcd, Informer, keys

log = structlog.get_logger("lattice.brain.task_view")

USING_RESOURCES = frozenset({TaskState.CLAIMED, TaskState.RUNNING})


class TaskView:
    def __init__(self, etcd: Etcd) -> None:
        self.dirty = asyncio.Event()
        self._tasks: dict[str, SeenTask] = {}
        self.informer = Informer(etcd, keys.TASKS, self._on_change)
        # Called with (task_guid, the task as now, None once deleted) on every change: how a
        # function's invocation waits for its task (brain/invoker.py) without polling.
        self.listeners: list[Callable[[str, SeenTask | None], None]] = []

    def _on_change(self, change: Change) -> None:
        if change.new is None:
            self._tasks.pop(change.key, None)
        else:
            try:
                task = Task.from_dict(json.loads(change.new))
            except (ValueError, KeyError, TypeError) as exc:
                log.error("task-unreadable", key=change.key, error=str(exc))
                self._tasks.pop(change.key, None)
            else:
                self._tasks[change.key] = SeenTask(task, change.revision)
        if self.listeners:
            seen = self._tasks.get(change.key)
            guid = change.key[len(keys.TASKS):]
            for listener in self.listeners:
                listener(guid, seen)
        self.dirty.set()

    def tasks(self) -> list[SeenTask]:
        return list(self._tasks.values())

    def usage(self) -> list[tuple[str, int, int]]:
        """(cell_id, memory_mb, disk_mb) of every task holding resources on a cell."""
        return [
            (s.task.cell_id, s.task.definition.memory_mb, s.task.definition.disk_mb)
            for s in self._tasks.values()
            if s.task.state in USING_RESOURCES and s.task.cell_id
        ]
