"""Tasks as pure data: the state table, validation that lists every field, the plan, tar reading."""

from __future__ import annotations

import io
import itertools
import tarfile
from dataclasses import replace

import pytest

from lattice.brain.task_callback import retriable_status
from lattice.brain.task_plan import RESOLVING_STUCK_NS, plan_tasks, task_work
from lattice.brain.tasks_db import SeenTask
from lattice.cell.tasks import first_file_of_tar, task_container_spec
from lattice.models import InvalidTaskTransition, TaskState, ValidationError, parse_task
from lattice.models.task import CANCELLED_REASON, Task, task_allows_transition

S = TaskState
NS = 1_000_000_000

ALLOWED = {
    (S.PENDING, S.CLAIMED),
    (S.PENDING, S.COMPLETED),
    (S.CLAIMED, S.RUNNING),
    (S.CLAIMED, S.COMPLETED),
    (S.RUNNING, S.COMPLETED),
    (S.COMPLETED, S.RESOLVING),
    (S.RESOLVING, S.COMPLETED),
}


@pytest.mark.parametrize(("current", "new"), list(itertools.product(S, S)))
def test_transition_table(current: TaskState, new: TaskState) -> None:
    assert task_allows_transition(current, new) is ((current, new) in ALLOWED)


def test_transition_refused_raises() -> None:
    task = parse_task({"task_guid": "t", "image": "busybox"}, 1)
    with pytest.raises(InvalidTaskTransition, match="PENDING to RUNNING"):
        task.transition(S.RUNNING, 2)


def test_parse_fills_defaults() -> None:
    task = parse_task({"task_guid": "t-1", "image": " img:1 ", "command": ["sh", "-c", "x"]}, 5)
    assert task.state == S.PENDING
    assert task.created_at == task.updated_at == 5
    d = task.definition
    assert (d.image, d.command, d.memory_mb, d.cpu_weight, d.log_source) == (
        "img:1", ("sh", "-c", "x"), 128, 100, "TASK"
    )
    assert task.log_guid == "t-1"


def test_parse_lists_every_bad_field() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_task(
            {
                "task_guid": "bad guid", "memory_mb": -1, "cpu_weight": 0, "command": "ok",
                "args": [1], "env": [{"name": "1X", "value": "v"}], "privileged": "yes",
                "result_file": "relative.txt", "completion_callback_url": "ftp://x/",
                "log_source": "has space", "colour": "red",
            },
            1,
        )
    fields = {e.field for e in caught.value.errors}
    assert fields == {
        "task_guid", "image", "memory_mb", "cpu_weight", "args", "env[0].name", "privileged",
        "result_file", "completion_callback_url", "log_source", "colour",
    }


def test_parse_refuses_non_object() -> None:
    with pytest.raises(ValidationError, match="body"):
        parse_task([1, 2], 1)


def test_completed_keeps_first_completion_and_clears_reason_on_success() -> None:
    task = parse_task({"task_guid": "t", "image": "i"}, 1)
    ok = task.completed(10, failed=False, failure_reason="ignored", result="r", exit_status=0)
    assert (ok.failed, ok.failure_reason, ok.result, ok.first_completed_at) == (False, "", "r", 10)
    again = ok.transition(S.RESOLVING, 20).transition(S.COMPLETED, 30)
    assert again.first_completed_at == 10
    cancelled = task.completed(11, failed=True, failure_reason=CANCELLED_REASON)
    assert cancelled.failed
    assert cancelled.failure_reason == "task was cancelled"


def test_round_trip() -> None:
    task = parse_task({"task_guid": "t", "image": "i", "env": [{"name": "A", "value": "1"}],
                       "result_file": "/r", "completion_callback_url": "http://127.0.0.1:1/"},
                      1)
    done = task.transition(S.CLAIMED, 2, cell_id="c").transition(S.RUNNING, 3).completed(
        4, failed=True, failure_reason="Exited with status 3", exit_status=3)
    assert Task.from_dict(done.to_dict()) == done


def _seen(guid: str, state: TaskState, *, cell: str = "", updated: int = 0,
          callback: str = "") -> SeenTask:
    body = {"task_guid": guid, "image": "i"}
    if callback:
        body["completion_callback_url"] = callback
    task = parse_task(body, 0)
    return SeenTask(replace(task, state=state, cell_id=cell, updated_at=updated), 7)


def test_plan_sorts_tasks_into_what_to_do() -> None:
    now = 100 * NS
    tasks = [
        _seen("p", S.PENDING),
        _seen("on-live", S.RUNNING, cell="c1"),
        _seen("on-lost", S.CLAIMED, cell="gone"),
        _seen("cb", S.COMPLETED, callback="http://127.0.0.1:9/"),
        _seen("cb-later", S.COMPLETED, callback="http://127.0.0.1:9/"),
        _seen("cb-busy", S.COMPLETED, callback="http://127.0.0.1:9/"),
        _seen("plain-done", S.COMPLETED),
        _seen("stuck", S.RESOLVING, updated=now - RESOLVING_STUCK_NS),
        _seen("resolving", S.RESOLVING, updated=now - 1),
    ]
    plan = plan_tasks(tasks, cells=frozenset({"c1"}), cells_trusted=True, now_ns=now,
                      callback_due={"cb-later": now + 1}, in_flight=frozenset({"cb-busy"}))

    def guids(items: list[SeenTask]) -> list[str]:
        return [s.task.task_guid for s in items]

    assert guids(plan.pending) == ["p"]
    assert guids(plan.lost) == ["on-lost"]
    assert guids(plan.callbacks) == ["cb"]
    assert guids(plan.stuck) == ["stuck"]


def test_plan_trusts_no_cell_absence_during_grace() -> None:
    plan = plan_tasks([_seen("x", S.RUNNING, cell="gone")], cells=frozenset(),
                      cells_trusted=False, now_ns=1, callback_due={}, in_flight=frozenset())
    assert plan.lost == []


def test_task_work_is_one_container_of_its_size() -> None:
    work = task_work(SeenTask(parse_task({"task_guid": "w", "image": "i", "memory_mb": 64,
                                          "disk_mb": 10}, 0), 1))
    assert (work.process_guid, work.memory_mb, work.disk_mb) == ("w", 64, 10)


@pytest.mark.parametrize(("status", "retry"), [(200, False), (204, False), (400, False),
                                               (500, False), (503, True), (504, True)])
def test_callback_retries_only_503_and_504(status: int, retry: bool) -> None:
    assert retriable_status(status) is retry


def test_first_file_of_tar_truncates_to_10_kb() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        payload = b"x" * 20_000
        info = tarfile.TarInfo("result.txt")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    assert first_file_of_tar(buffer.getvalue()) == "x" * 10 * 1024


def test_task_container_spec_labels_and_command() -> None:
    task = parse_task({"task_guid": "t", "image": "i", "command": ["sh"], "args": ["-c", "x"],
                       "memory_mb": 1, "env": [{"name": "A", "value": "b"}]}, 0)
    spec = task_container_spec(cluster_id="k", cell_id="cell/0", address="127.0.0.1", task=task)
    assert spec.labels == {"lattice.cluster_id": "k", "lattice.cell_id": "cell/0",
                           "lattice.task_guid": "t"}
    assert spec.command == ("sh", "-c", "x")
    assert spec.environment == {"A": "b"}
    assert spec.ports == ()
    assert spec.name == "lattice-cell_0-task-t"
    assert spec.mem_limit == 1024 * 1024
