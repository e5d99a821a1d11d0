"""Task: one-off work that runs once to completion (Diego's Task), and its state rules.

    PENDING ──auctioneer──> CLAIMED ──cell starts it──> RUNNING ──exit──> COMPLETED
       │                       │                                          │    ^
       └──cancel──> COMPLETED <┘ (cancel, or the cell failed to start)    v    │ callback failed
                                                                       RESOLVING
                                                          (callback delivered or deleted: removed)

A task is written once by the API (PENDING) and then changed only through `transition`, which
refuses what the table below does not allow. Pure: no I/O here.
"""

from __future__ import annotations

import enum
import re
from dataclasses import asdict, dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from lattice.models.desired import APP_NAME_PATTERN, parse_env
from lattice.models.errors import Problems

DEFAULT_LOG_SOURCE = "TASK"
MAX_RESULT_BYTES = 10 * 1024          # Diego reads at most 10 KB of the result file
MAX_ANNOTATION_BYTES = 10 * 1024
CANCELLED_REASON = "task was cancelled"
LOG_SOURCE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class TaskState(enum.StrEnum):
    PENDING = "PENDING"        # accepted, not yet placed on a cell
    CLAIMED = "CLAIMED"        # placed on a cell; its container is being created
    RUNNING = "RUNNING"        # its container runs
    COMPLETED = "COMPLETED"    # finished (or failed, or cancelled); result and reason are set
    RESOLVING = "RESOLVING"    # its completion is being handed over; removed next


# Diego's task state machine (bbs/db/sqldb/task_db.go): completion is reachable from every live
# state (a cancel, or a cell that cannot start it); RESOLVING falls back to COMPLETED when the
# hand-over fails so that it is tried again.
_ALLOWED: dict[TaskState, frozenset[TaskState]] = {
    TaskState.PENDING: frozenset({TaskState.CLAIMED, TaskState.COMPLETED}),
    TaskState.CLAIMED: frozenset({TaskState.RUNNING, TaskState.COMPLETED}),
    TaskState.RUNNING: frozenset({TaskState.COMPLETED}),
    TaskState.COMPLETED: frozenset({TaskState.RESOLVING}),
    TaskState.RESOLVING: frozenset({TaskState.COMPLETED}),
}


def task_allows_transition(current: TaskState, new: TaskState) -> bool:
    return new in _ALLOWED[current]


class InvalidTaskTransition(Exception):
    def __init__(self, current: TaskState, new: TaskState) -> None:
        super().__init__(f"cannot move a task from {current} to {new}")
        self.current = current
        self.new = new


@dataclass(frozen=True)
class TaskDefinition:
    """What to run: fixed when the task is submitted."""

    image: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    memory_mb: int = 128
    disk_mb: int = 0
    cpu_weight: int = 100
    privileged: bool = False
    result_file: str = ""                  # absolute path inside the container; "" for none
    completion_callback_url: str = ""
    annotation: str = ""
    log_source: str = DEFAULT_LOG_SOURCE   # source type of the task's log lines
    log_guid: str = ""                     # app id of its log lines; "" means the task guid
    # A function's invocation (models/function.py): its stdin comes from the task_io stdin key,
    # its stdout (bounded) and stderr's last lines are kept in task_io keys at completion, and
    # the cell kills it after timeout_s (0: never). Not settable through POST /v1/tasks.
    stdin: bool = False
    capture_stdout: bool = False
    timeout_s: int = 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["env"] = [{"name": k, "value": v} for k, v in self.env]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskDefinition:
        return cls(
            image=data["image"],
            command=tuple(data.get("command", ())),
            args=tuple(data.get("args", ())),
            env=tuple((e["name"], e["value"]) for e in data.get("env", ())),
            memory_mb=int(data.get("memory_mb", 128)),
            disk_mb=int(data.get("disk_mb", 0)),
            cpu_weight=int(data.get("cpu_weight", 100)),
            privileged=bool(data.get("privileged", False)),
            result_file=data.get("result_file", ""),
            completion_callback_url=data.get("completion_callback_url", ""),
            annotation=data.get("annotation", ""),
            log_source=data.get("log_source", DEFAULT_LOG_SOURCE),
            log_guid=data.get("log_guid", ""),
            stdin=bool(data.get("stdin", False)),
            capture_stdout=bool(data.get("capture_stdout", False)),
            timeout_s=int(data.get("timeout_s", 0)),
        )


@dataclass(frozen=True)
class Task:
    task_guid: str
    definition: TaskDefinition
    state: TaskState
    created_at: int                     # ns since the epoch
    updated_at: int
    domain: str = ""
    cell_id: str = ""
    first_completed_at: int = 0
    failed: bool = False
    failure_reason: str = ""
    result: str = ""
    exit_status: int | None = None      # the container's exit status, once it has exited
    placement_error: str = ""           # why a PENDING task is not placed yet

    @property
    def log_guid(self) -> str:
        return self.definition.log_guid or self.task_guid

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["state"] = str(self.state)
        data["definition"] = self.definition.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Task:
        exit_status = data.get("exit_status")
        return cls(
            task_guid=data["task_guid"],
            definition=TaskDefinition.from_dict(data["definition"]),
            state=TaskState(data["state"]),
            created_at=int(data["created_at"]),
            updated_at=int(data["updated_at"]),
            domain=data.get("domain", ""),
            cell_id=data.get("cell_id", ""),
            first_completed_at=int(data.get("first_completed_at", 0)),
            failed=bool(data.get("failed", False)),
            failure_reason=data.get("failure_reason", ""),
            result=data.get("result", ""),
            exit_status=None if exit_status is None else int(exit_status),
            placement_error=data.get("placement_error", ""),
        )

    def transition(self, state: TaskState, now_ns: int, **changes: Any) -> Task:
        if not task_allows_transition(self.state, state):
            raise InvalidTaskTransition(self.state, state)
        return replace(self, state=state, updated_at=now_ns, **changes)

    def completed(
        self, now_ns: int, *, failed: bool, failure_reason: str = "", result: str = "",
        exit_status: int | None = None,
    ) -> Task:
        """COMPLETED with its outcome; the first completion time is kept across RESOLVING."""
        return self.transition(
            TaskState.COMPLETED,
            now_ns,
            failed=failed,
            failure_reason=failure_reason if failed else "",
            result=result,
            exit_status=exit_status,
            first_completed_at=self.first_completed_at or now_ns,
            placement_error="",
        )


def exit_reason(exit_status: int) -> str:
    """The failure reason of a task whose process exited non-zero, in Diego's words."""
    return f"Exited with status {exit_status}"


def new_task(task_guid: str, definition: TaskDefinition, now_ns: int, domain: str = "") -> Task:
    return Task(task_guid=task_guid, definition=definition, state=TaskState.PENDING,
                created_at=now_ns, updated_at=now_ns, domain=domain)


# ---------------------------------------------------------------------------------------------
# Parsing and validation of a submitted task: every bad field is collected.
# ---------------------------------------------------------------------------------------------

_KNOWN_FIELDS = frozenset(
    {"task_guid", "domain", "image", "command", "args", "env", "memory_mb", "disk_mb",
     "cpu_weight", "privileged", "result_file", "completion_callback_url", "annotation",
     "log_source", "log_guid"}
)


def _int(problems: Problems, data: dict[str, Any], name: str, default: int, low: int,
         high: int) -> int:
    value = data.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        problems.add(name, f"must be an integer, got {value!r}")
        return default
    if not low <= value <= high:
        problems.add(name, f"must be between {low} and {high}, got {value}")
    return value


def _string(problems: Problems, data: dict[str, Any], name: str) -> str:
    value = data.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        problems.add(name, f"must be a string, got {value!r}")
        return ""
    return value


def _strings(problems: Problems, data: dict[str, Any], name: str) -> tuple[str, ...]:
    value = data.get(name)
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)           # Diego's `path` is one string; accept it as a one-item list
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.add(name, "must be a list of strings")
        return ()
    return tuple(value)


def _guid(problems: Problems, value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        problems.add(name, "is required")
        return ""
    if not APP_NAME_PATTERN.match(value):
        problems.add(name, f"{value!r} may only contain letters, digits, '_' and '-'")
    elif len(value) > 63:
        problems.add(name, "must be at most 63 characters")
    return value


def _callback_url(problems: Problems, value: str) -> None:
    if not value:
        return
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problems.add("completion_callback_url", f"{value!r} is not an http(s) URL")


def parse_task(data: Any, now_ns: int) -> Task:
    """A PENDING Task from a submitted JSON object; ValidationError listing every bad field."""
    problems = Problems()
    if not isinstance(data, dict):
        problems.add("body", "must be a JSON object")
        problems.raise_if_any()
        raise AssertionError("unreachable")
    for name in sorted(set(data) - _KNOWN_FIELDS):
        problems.add(name, "is not a task field")
    guid = _guid(problems, data.get("task_guid"), "task_guid")
    domain = _string(problems, data, "domain")
    image = data.get("image")
    if not isinstance(image, str) or not image.strip():
        problems.add("image", "is required")
        image = ""
    image = image.strip()
    command = _strings(problems, data, "command")    # none: the image's own CMD runs
    args = _strings(problems, data, "args")
    env = parse_env(problems, data.get("env"))
    memory_mb = _int(problems, data, "memory_mb", 128, 0, 1 << 20)
    disk_mb = _int(problems, data, "disk_mb", 0, 0, 1 << 24)
    cpu_weight = _int(problems, data, "cpu_weight", 100, 1, 100)
    privileged = data.get("privileged", False)
    if not isinstance(privileged, bool):
        problems.add("privileged", "must be true or false")
        privileged = False
    result_file = _string(problems, data, "result_file")
    if result_file and not result_file.startswith("/"):
        problems.add("result_file", f"{result_file!r} must be an absolute path in the container")
    callback = _string(problems, data, "completion_callback_url")
    _callback_url(problems, callback)
    annotation = _string(problems, data, "annotation")
    if len(annotation.encode()) > MAX_ANNOTATION_BYTES:
        problems.add("annotation", f"must be at most {MAX_ANNOTATION_BYTES} bytes")
    log_source = _string(problems, data, "log_source") or DEFAULT_LOG_SOURCE
    if not LOG_SOURCE_PATTERN.match(log_source):
        problems.add("log_source", f"{log_source!r} must be 1-32 letters, digits, '_' or '-'")
    log_guid = _string(problems, data, "log_guid")
    if log_guid:
        _guid(problems, log_guid, "log_guid")
    problems.raise_if_any()
    definition = TaskDefinition(
        image=image, command=command, args=args, env=env, memory_mb=memory_mb, disk_mb=disk_mb,
        cpu_weight=cpu_weight, privileged=privileged, result_file=result_file,
        completion_callback_url=callback, annotation=annotation, log_source=log_source,
        log_guid=log_guid,
    )
    return new_task(guid, definition, now_ns, domain)
