"""Task convergence, step one: from a snapshot of tasks and cells, what to do. Pure.

    PENDING                                   -> auction (placed, or a placement error)
    CLAIMED/RUNNING on a cell that is gone     -> fail: "cell disappeared before completion"
    COMPLETED with a callback URL, due         -> hand over (RESOLVING, POST, remove)
    RESOLVING for longer than RESOLVING_STUCK  -> back to COMPLETED (the brain that was handing
                                                  it over died), so it is handed over again
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from lattice.brain.auctioneer import Work
from lattice.brain.tasks_db import SeenTask
from lattice.models import TaskState

RESOLVING_STUCK_NS = 30 * 1_000_000_000


@dataclass
class TaskPlan:
    pending: list[SeenTask] = field(default_factory=list)
    lost: list[SeenTask] = field(default_factory=list)
    callbacks: list[SeenTask] = field(default_factory=list)
    stuck: list[SeenTask] = field(default_factory=list)


def plan_tasks(
    tasks: Iterable[SeenTask],
    *,
    cells: frozenset[str],
    cells_trusted: bool,
    now_ns: int,
    callback_due: Mapping[str, int],
    in_flight: frozenset[str],
) -> TaskPlan:
    """`callback_due`: task guid -> earliest time (ns) of its next hand-over attempt, for tasks
    whose last one failed; `in_flight`: guids being handed over right now."""
    result = TaskPlan()
    for seen in sorted(tasks, key=lambda s: (s.task.created_at, s.task.task_guid)):
        task = seen.task
        if task.state == TaskState.PENDING:
            result.pending.append(seen)
        elif task.state in (TaskState.CLAIMED, TaskState.RUNNING):
            if cells_trusted and task.cell_id not in cells:
                result.lost.append(seen)
        elif task.state == TaskState.COMPLETED:
            if (
                task.definition.completion_callback_url
                and task.task_guid not in in_flight
                and callback_due.get(task.task_guid, 0) <= now_ns
            ):
                result.callbacks.append(seen)
        elif (
            task.state == TaskState.RESOLVING
            and task.task_guid not in in_flight
            and now_ns - task.updated_at >= RESOLVING_STUCK_NS
        ):
            result.stuck.append(seen)
    return result


def task_work(seen: SeenTask) -> Work:
    """A task as the auction sees it: one container of its size. Index -1 keeps it apart from
    any instance of an app that happens to share its name."""
    definition = seen.task.definition
    return Work(seen.task.task_guid, -1, definition.memory_mb, definition.disk_mb)
