"""Tasks from ltc's side: the /v1/tasks calls, task files, and `run-task`'s run-and-follow.

Errors are the client's (`lattice.client.errors`): an unreadable task file is a ConfigError
(FileSystemError), a file that is not a JSON object is InvalidInput, API refusals are ApiErrors.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp

from lattice.client.errors import (
    LogStreamFailed,
    ProtocolError,
    WaitTimedOut,
)
from lattice.client.json_files import read_json_object_file
from lattice.client.logs import tail_logs
from lattice.client.receptor import ReceptorClient
from lattice.client.session_transport import SessionTransport
from lattice.client.target import Target
from lattice.models import Task, TaskState
from logagg.envelope import Envelope

POLL_S = 0.25
# After the task completes, how long its last lines may take to come through the aggregator.
LOG_DRAIN_S = 5.0
EXIT_LINE_PREFIX = "Exit status"     # the cell's last line about a task's container


def _tasks(data: Any, many: bool) -> Any:
    """Decode an answer; a malformed one is a ProtocolError, as in ReceptorClient."""
    try:
        return [Task.from_dict(item) for item in data] if many else Task.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ProtocolError(f"the API's task answer is malformed ({exc!r}): {data!r:.200}") \
            from exc


class TaskClient(ReceptorClient):
    """The task endpoints; shares ReceptorClient's transport and error translation."""

    async def submit_task(self, request: Mapping[str, Any]) -> Task:
        task: Task = _tasks(await self._call("POST", "/v1/tasks", body=request), many=False)
        return task

    async def task(self, guid: str) -> Task:
        task: Task = _tasks(await self._call("GET", f"/v1/tasks/{guid}"), many=False)
        return task

    async def tasks(self) -> list[Task]:
        tasks: list[Task] = _tasks(await self._call("GET", "/v1/tasks"), many=True)
        return tasks

    async def cancel_task(self, guid: str) -> None:
        await self._call("POST", f"/v1/tasks/{guid}/cancel")

    async def delete_task(self, guid: str) -> None:
        await self._call("DELETE", f"/v1/tasks/{guid}")


def task_client(session: aiohttp.ClientSession, target: Target) -> TaskClient:
    return TaskClient(SessionTransport(session), target.receptor_url)


def read_task_file(path: Path) -> dict[str, Any]:
    """The task request in a JSON file; the API validates its fields."""
    return read_json_object_file(path, "a task")


async def wait_completed(client: TaskClient, guid: str, timeout_s: float | None) -> Task:
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        task = await client.task(guid)
        if task.state in (TaskState.COMPLETED, TaskState.RESOLVING):
            return task
        if deadline is not None and time.monotonic() >= deadline:
            raise WaitTimedOut(guid, 0, 1, timeout_s or 0.0)
        await asyncio.sleep(POLL_S)


async def run_and_follow(
    session: aiohttp.ClientSession, target: Target, request: Mapping[str, Any],
    on_line: Callable[[Envelope], None], *, timeout_s: float | None = None,
) -> Task:
    """Submit the task, send each of its log lines to `on_line` until it has completed and its
    last line came through, delete it, and return it as completed.

    The log stream is opened before the task is submitted, and asks for recent lines too, so
    no line is missed whichever comes first.
    """
    client = task_client(session, target)
    guid = str(request["task_guid"])
    exit_seen = asyncio.Event()

    async def follow() -> None:
        async for envelope in tail_logs(session, target, guid, with_recent=True):
            on_line(envelope)
            if envelope.source_type == "CELL" and envelope.message.startswith(EXIT_LINE_PREFIX):
                exit_seen.set()

    follower = asyncio.create_task(follow())
    try:
        await client.submit_task(request)
        done = await wait_completed(client, guid, timeout_s)
        if done.exit_status is not None:
            # The container ran: wait (a little) for its last lines, which end with the exit.
            waiter = asyncio.create_task(exit_seen.wait())
            await asyncio.wait({waiter, follower}, timeout=LOG_DRAIN_S,
                               return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter
        if follower.done() and not follower.cancelled() and follower.exception() is not None:
            error = follower.exception()
            if isinstance(error, LogStreamFailed):
                raise error
        if done.state == TaskState.COMPLETED:
            await client.delete_task(guid)
        return done
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError, LogStreamFailed):
            await follower
