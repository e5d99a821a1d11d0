"""The brain's storage operations on tasks, each one etcd transaction.

As for LRPs, every write that depends on a read compares the task key's mod_revision, so a
decision taken on a stale read fails (returns False) rather than overwriting newer state. A
claim writes the task and its cell's assignment together; every completion, cancel or removal
deletes the assignment in the same transaction, so a cell's work list never outlives the task's
claim on it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from lattice.models import Task, TaskState
from lattice.models.task import CANCELLED_REASON
from lattice.store import Delete, Etcd, ModRevisionIs, Put, keys
from lattice.store.etcd import Operation

CELL_LOST_REASON = "cell disappeared before completion"


def encode(task: Task) -> bytes:
    return json.dumps(task.to_dict(), separators=(",", ":")).encode()


def assignment_value(task: Task) -> bytes:
    return json.dumps({"task_guid": task.task_guid}, separators=(",", ":")).encode()


@dataclass(frozen=True)
class SeenTask:
    """A task as read, with the revision every conditional write compares against."""

    task: Task
    revision: int


def _release(task: Task) -> list[Operation]:
    return [Delete(keys.task_assignment(task.cell_id, task.task_guid))] if task.cell_id else []


def _io(task: Task) -> list[Operation]:
    """A function task's stdin and output keys go with it."""
    if not (task.definition.stdin or task.definition.capture_stdout):
        return []
    guid = task.task_guid
    return [Delete(keys.task_stdin(guid)), Delete(keys.task_stdout(guid)),
            Delete(keys.task_stderr(guid))]


class TaskDB:
    def __init__(self, etcd: Etcd) -> None:
        self._etcd = etcd

    async def create(self, task: Task) -> bool:
        """Write a new PENDING task; False if its guid is taken."""
        key = keys.task(task.task_guid)
        return await self._etcd.txn([ModRevisionIs(key, 0)], [Put(key, encode(task))])

    async def get(self, guid: str) -> SeenTask | None:
        kv = await self._etcd.get(keys.task(guid))
        if kv is None:
            return None
        return SeenTask(Task.from_dict(json.loads(kv.value)), kv.mod_revision)

    async def list_tasks(self, domain: str | None = None) -> list[Task]:
        kvs, _ = await self._etcd.get_prefix(keys.TASKS)
        tasks = [Task.from_dict(json.loads(kv.value)) for kv in kvs]
        if domain is not None:
            tasks = [t for t in tasks if t.domain == domain]
        return sorted(tasks, key=lambda t: (t.created_at, t.task_guid))

    async def _write(self, seen: SeenTask, new: Task, extra: list[Operation]) -> bool:
        key = keys.task(seen.task.task_guid)
        return await self._etcd.txn(
            [ModRevisionIs(key, seen.revision)], [Put(key, encode(new)), *extra]
        )

    async def claim(self, seen: SeenTask, cell_id: str, now_ns: int) -> bool:
        """CLAIMED on `cell_id`, and the cell's task assignment, in one transaction."""
        claimed = seen.task.transition(
            TaskState.CLAIMED, now_ns, cell_id=cell_id, placement_error=""
        )
        put = Put(keys.task_assignment(cell_id, seen.task.task_guid), assignment_value(claimed))
        return await self._write(seen, claimed, [put])

    async def set_placement_error(self, seen: SeenTask, error: str, now_ns: int) -> bool:
        if seen.task.placement_error == error:
            return False
        return await self._write(
            seen, replace(seen.task, placement_error=error, updated_at=now_ns), []
        )

    async def cancel(self, seen: SeenTask, now_ns: int) -> bool:
        """COMPLETED, failed, "task was cancelled"; the cell sees its assignment go and kills
        the container."""
        done = seen.task.completed(now_ns, failed=True, failure_reason=CANCELLED_REASON)
        return await self._write(seen, done, _release(seen.task))

    async def fail_lost(self, seen: SeenTask, now_ns: int) -> bool:
        """The task's cell is gone: the task cannot finish there (Diego fails it, not re-runs
        it: a task may have had effects and must not run twice)."""
        done = seen.task.completed(now_ns, failed=True, failure_reason=CELL_LOST_REASON)
        key = keys.cell(seen.task.cell_id)
        return await self._etcd.txn(
            [ModRevisionIs(keys.task(seen.task.task_guid), seen.revision), ModRevisionIs(key, 0)],
            [Put(keys.task(seen.task.task_guid), encode(done)), *_release(seen.task)],
        )

    async def resolving(self, seen: SeenTask, now_ns: int) -> SeenTask | None:
        """COMPLETED -> RESOLVING: this brain now hands the result over. None if it lost."""
        new = seen.task.transition(TaskState.RESOLVING, now_ns)
        key = keys.task(seen.task.task_guid)
        if not await self._write(seen, new, []):
            return None
        kv = await self._etcd.get(key)
        return None if kv is None else SeenTask(new, kv.mod_revision)

    async def back_to_completed(self, seen: SeenTask, now_ns: int) -> bool:
        """RESOLVING -> COMPLETED: the hand-over failed, so it is tried again later."""
        return await self._write(seen, seen.task.transition(TaskState.COMPLETED, now_ns), [])

    async def remove(self, seen: SeenTask) -> bool:
        key = keys.task(seen.task.task_guid)
        return await self._etcd.txn(
            [ModRevisionIs(key, seen.revision)],
            [Delete(key), *_release(seen.task), *_io(seen.task)],
        )
