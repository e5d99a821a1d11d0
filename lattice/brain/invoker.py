"""Invocations of functions: `POST http://NAME.<domain>/` runs one task and answers with it.

    router (NAME.<domain> is a host of the `functions` service record) ──> this handler
      gate (per function): a slot, a place in line, or 429 at once
      task PENDING + stdin key, one txn ──> auction ──> cell: stdin in, stdout kept (cell/tasks.py)
      COMPLETED seen through the TaskView informer (no polling)
        ──> 200 stdout | 502 stderr's last lines | 504 timed out ──> task and its keys deleted
    with X-Callback-Url: 202 {"task_guid"} at once; the task carries the URL and the
    TaskController POSTs the outcome (task_callback.py, with `callback_payload` below).

The answer for a completed task is a pure function (`answer_for`), tested as a table.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import structlog
from aiohttp import web

from lattice.brain.function_view import FunctionView
from lattice.brain.functions_db import FunctionDB
from lattice.brain.gate import Gate, QueueFull
from lattice.brain.task_view import TaskView
from lattice.brain.tasks_db import SeenTask, TaskDB
from lattice.models import Task, TaskDefinition, TaskState
from lattice.models.function import (
    MAX_STDIN_BYTES,
    STDOUT_TOO_LARGE_REASON,
    TIMEOUT_REASON_PREFIX,
    Function,
    stderr_tail,
)
from lattice.models.task import new_task
from lattice.store import StoreError

log = structlog.get_logger("lattice.brain.invoker")

FUNCTIONS_SERVICE = "functions"            # the service record naming every function's host
ERROR_HEADER = "X-Lattice-Function-Error"  # like gorouter's X-Cf-RouterError, for our errors
TASK_GUID_HEADER = "X-Lattice-Task-Guid"
EXIT_STATUS_HEADER = "X-Lattice-Exit-Status"
CALLBACK_HEADER = "X-Callback-Url"
LOG_SOURCE = "FN"
# Placement and container creation come on top of the run's own timeout before a waiting
# request gives up; the run itself is killed by the cell at the function's timeout.
START_ALLOWANCE_S = 30.0
CANCEL_ATTEMPTS = 5
# A completed invocation nobody waits for (its brain died while waiting) is removed after this.
ORPHAN_AFTER_S = 60.0
SWEEP_INTERVAL_S = 30.0

Clock = Callable[[], int]

_REASONS = {400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            413: "Payload Too Large", 429: "Too Many Requests", 502: "Bad Gateway",
            503: "Service Unavailable", 504: "Gateway Timeout"}


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def response(self) -> web.Response:
        return web.Response(status=self.status, body=self.body, headers=self.headers)


def error_answer(status: int, code: str, message: str, detail: str = "",
                 headers: dict[str, str] | None = None) -> Answer:
    """gorouter's shape: `502 Bad Gateway: message`, then details, as text."""
    text = f"{status} {_REASONS.get(status, '')}: {message}\n"
    if detail:
        text += "\n" + detail.rstrip("\n") + "\n"
    return Answer(status, text.encode(), {
        "Content-Type": "text/plain; charset=utf-8", ERROR_HEADER: code, **(headers or {}),
    })


def answer_for(name: str, task: Task, stdout: bytes, stderr: bytes, content_type: str
               ) -> Answer:
    """The HTTP answer for a function's completed task."""
    headers = {TASK_GUID_HEADER: task.task_guid}
    if task.exit_status is not None:
        headers[EXIT_STATUS_HEADER] = str(task.exit_status)
    if not task.failed:
        return Answer(200, stdout, {**headers, "Content-Type": content_type})
    tail = stderr_tail(stderr)
    reason = task.failure_reason
    if reason.startswith(TIMEOUT_REASON_PREFIX):
        return error_answer(504, "function_timeout", f"function {name} {reason.lower()}", tail,
                            headers)
    if reason == STDOUT_TOO_LARGE_REASON:
        return error_answer(502, "response_too_large", f"function {name}: {reason}", tail,
                            headers)
    return error_answer(502, "function_failed", f"function {name} failed: {reason}", tail,
                        headers)


def callback_url_problem(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{CALLBACK_HEADER} {url!r} is not an http(s) URL"
    return None


def task_guid_for(name: str) -> str:
    # Task guids are at most 63 characters: the name is cut, the random part is whole.
    return f"{name[:40]}-{uuid.uuid4().hex[:16]}"


def invocation_task(function: Function, guid: str, *, now_ns: int, callback: str,
                    path: str, query: str, content_type: str) -> Task:
    """The task that runs one invocation; the request's path and query reach the process as
    CGI's variables, after the function's own env."""
    env = dict(function.env)
    env.update({"REQUEST_METHOD": "POST", "REQUEST_PATH": path, "QUERY_STRING": query,
                "CONTENT_TYPE": content_type, "FUNCTION_NAME": function.name})
    definition = TaskDefinition(
        image=function.image, command=function.command, env=tuple(env.items()),
        memory_mb=function.memory_mb, cpu_weight=function.cpu_weight,
        completion_callback_url=callback, annotation=f"function {function.name}",
        log_source=LOG_SOURCE, log_guid=function.name, stdin=True, capture_stdout=True,
        timeout_s=function.timeout_s,
    )
    return new_task(guid, definition, now_ns)


def orphans(tasks: list[SeenTask], *, now_ns: int, waiting: frozenset[str]
            ) -> list[SeenTask]:
    """Completed invocations without a callback that no request of this brain waits for,
    completed more than ORPHAN_AFTER_S ago: the brain that submitted them died meanwhile."""
    return [
        seen for seen in tasks
        if seen.task.definition.capture_stdout
        and not seen.task.definition.completion_callback_url
        and seen.task.state is TaskState.COMPLETED
        and seen.task.task_guid not in waiting
        and now_ns - seen.task.first_completed_at > ORPHAN_AFTER_S * 1e9
    ]


class Invoker:
    """Runs invocations; one per brain. Every brain serves them (the router balances)."""

    def __init__(self, *, functions: FunctionView, tasks: TaskView, db: FunctionDB,
                 task_db: TaskDB, clock: Clock) -> None:
        self._functions = functions
        self._db = db
        self._task_db = task_db
        self._clock = clock
        self._gates: dict[str, tuple[int, Gate]] = {}
        self._waiters: dict[str, asyncio.Future[SeenTask | None]] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._tasks = tasks
        tasks.listeners.append(self._on_task)

    def _on_task(self, guid: str, seen: SeenTask | None) -> None:
        waiter = self._waiters.get(guid)
        if waiter is None or waiter.done():
            return
        if seen is None or seen.task.state in (TaskState.COMPLETED, TaskState.RESOLVING):
            waiter.set_result(seen)

    def gate(self, function: Function) -> Gate:
        """The function's gate; a re-created function (new created_at) starts a new one."""
        found = self._gates.get(function.name)
        if found is None or found[0] != function.created_at:
            found = (function.created_at, Gate(function.concurrency, function.queue))
            self._gates[function.name] = found
        return found[1]

    # -- HTTP ------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        name = self._functions.name_of_host(request.host)
        function = self._functions.get(name) if name else None
        if function is None:
            return error_answer(404, "unknown_function",
                                f"no function at {request.host}").response()
        if request.method != "POST":
            return error_answer(405, "method_not_allowed",
                                f"function {function.name} is invoked with POST",
                                headers={"Allow": "POST"}).response()
        callback = request.headers.get(CALLBACK_HEADER, "").strip()
        if callback and (problem := callback_url_problem(callback)):
            return error_answer(400, "bad_callback_url", problem).response()
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return error_answer(413, "request_too_large",
                                f"the body exceeds {MAX_STDIN_BYTES} bytes").response()
        gate = self.gate(function)
        try:
            place = gate.reserve()
        except QueueFull as exc:
            log.info("function-queue-full", function=function.name, detail=str(exc))
            return error_answer(429, "queue_full",
                                f"function {function.name} is busy: {function.concurrency} "
                                f"running and {function.queue} waiting; retry later").response()
        content_type = request.headers.get("Content-Type", "application/octet-stream")
        guid = task_guid_for(function.name)
        task = invocation_task(function, guid, now_ns=self._clock(), callback=callback,
                               path=request.path, query=request.query_string,
                               content_type=content_type)
        if callback:
            runner = asyncio.create_task(self._run_detached(function, gate, place, task, body),
                                         name=f"invoke-{guid}")
            self._background.add(runner)
            runner.add_done_callback(self._background.discard)
            return web.json_response({"task_guid": guid}, status=202,
                                     headers={TASK_GUID_HEADER: guid})
        await gate.wait(place)
        try:
            return (await self._run(function, task, body, content_type)).response()
        except StoreError as exc:
            log.warning("function-store-unavailable", function=function.name, error=str(exc))
            return error_answer(503, "store_unavailable", f"the store is unavailable: {exc}"
                                ).response()
        finally:
            gate.release()

    # -- running ----------------------------------------------------------------------------

    async def _submit_and_wait(self, function: Function, task: Task, body: bytes
                               ) -> SeenTask | None:
        """Submit and wait until the task completes (or is gone); None: it did not finish in
        time and was cancelled."""
        guid = task.task_guid
        waiter: asyncio.Future[SeenTask | None] = asyncio.get_running_loop().create_future()
        self._waiters[guid] = waiter           # before the write: no change can be missed
        try:
            if not await self._db.submit(task, body):
                raise StoreError(f"task {guid} exists already")
            log.info("function-invoked", function=function.name, task_guid=guid,
                     stdin_bytes=len(body))
            try:
                async with asyncio.timeout(function.timeout_s + START_ALLOWANCE_S):
                    return await asyncio.shield(waiter)
            except TimeoutError:
                await self._cancel(guid)
                return None
        finally:
            self._waiters.pop(guid, None)

    async def _cancel(self, guid: str) -> None:
        for _ in range(CANCEL_ATTEMPTS):
            seen = await self._task_db.get(guid)
            if seen is None or seen.task.state in (TaskState.COMPLETED, TaskState.RESOLVING):
                return
            if await self._task_db.cancel(seen, self._clock()):
                log.warning("function-cancelled", task_guid=guid)
                return

    async def _remove(self, guid: str) -> None:
        for _ in range(CANCEL_ATTEMPTS):
            seen = await self._task_db.get(guid)
            if seen is None or await self._task_db.remove(seen):
                return

    async def _run(self, function: Function, task: Task, body: bytes, content_type: str
                   ) -> Answer:
        guid = task.task_guid
        try:
            done = await self._submit_and_wait(function, task, body)
            if done is None:
                pending = await self._task_db.get(guid)
                detail = pending.task.placement_error if pending is not None else ""
                return error_answer(
                    504, "function_timeout",
                    f"function {function.name} did not finish within "
                    f"{function.timeout_s + START_ALLOWANCE_S:g} s", detail,
                    {TASK_GUID_HEADER: guid})
            stdout, stderr = await self._db.output(guid)
            answer = answer_for(function.name, done.task, stdout, stderr, content_type)
            log.info("function-answered", function=function.name, task_guid=guid,
                     status=answer.status, stdout_bytes=len(stdout))
            return answer
        finally:
            with contextlib.suppress(StoreError):
                await self._remove(guid)

    async def _run_detached(self, function: Function, gate: Gate,
                            place: asyncio.Future[None], task: Task, body: bytes) -> None:
        """An invocation answered 202: its slot is held until the task completes; the
        TaskController delivers the outcome to the callback and removes the task."""
        await gate.wait(place)
        try:
            await self._submit_and_wait(function, task, body)
        except StoreError as exc:
            log.warning("function-async-failed", function=function.name,
                        task_guid=task.task_guid, error=str(exc))
        finally:
            gate.release()

    async def sweep_forever(self) -> None:
        """Remove orphaned invocations (see `orphans`) now and then."""
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            for seen in orphans(self._tasks.tasks(), now_ns=self._clock(),
                                waiting=frozenset(self._waiters)):
                try:
                    if await self._task_db.remove(seen):
                        log.info("function-orphan-removed", task_guid=seen.task.task_guid)
                except StoreError as exc:
                    log.warning("function-sweep-failed", error=str(exc))
                    break

    async def close(self) -> None:
        for running in list(self._background):
            running.cancel()
        for running in list(self._background):
            with contextlib.suppress(asyncio.CancelledError):
                await running


async def callback_payload(db: FunctionDB, task: Task) -> dict[str, Any]:
    """What a function's callback receives: the task's JSON (Diego's) with `result` set to
    stdout as text, `result_base64` to its exact bytes and `stderr_tail` to stderr's last
    lines. Other tasks: their JSON as is."""
    data = task.to_dict()
    if not task.definition.capture_stdout:
        return data
    stdout, stderr = await db.output(task.task_guid)
    data["result"] = stdout.decode("utf-8", errors="replace")
    data["result_base64"] = base64.b64encode(stdout).decode("ascii")
    data["stderr_tail"] = stderr_tail(stderr)
    return data
