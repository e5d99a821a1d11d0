"""The task endpoints of the receptor-like API (Diego's /v1/tasks).

    POST   /v1/tasks                 201 the PENDING task; 400 listing every bad field; 409
    GET    /v1/tasks[?domain=D]      200 every task (of one domain)
    GET    /v1/tasks/{guid}          200 the task; 404 TaskNotFound
    DELETE /v1/tasks/{guid}          204 resolve + remove a COMPLETED task; 409 otherwise
    POST   /v1/tasks/{guid}/cancel   204 the task is COMPLETED, failed, "task was cancelled"

Handlers parse, call the TaskDB and answer; errors travel through the API's middleware.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web

from lattice.brain.errors import (
    InvalidTaskState,
    ModificationConflict,
    TaskGuidAlreadyExists,
    TaskNotFound,
)
from lattice.brain.images import ImageInspector
from lattice.brain.json_requests import parse_create_body
from lattice.brain.tasks_db import SeenTask, TaskDB
from lattice.models import TaskState, parse_task

log = structlog.get_logger("lattice.brain.tasks_api")

# A concurrent writer (the cell starting or finishing the task) may win a compare-and-swap;
# the handler re-reads and decides again this many times before answering 409.
CAS_ATTEMPTS = 5


@dataclass(frozen=True, kw_only=True)
class TaskApiDeps:
    db: TaskDB
    images: ImageInspector
    clock: Callable[[], int]


TASK_DEPS = web.AppKey("task_deps", TaskApiDeps)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def _deps(request: web.Request) -> TaskApiDeps:
    return request.app[TASK_DEPS]


async def _existing(db: TaskDB, guid: str) -> SeenTask:
    seen = await db.get(guid)
    if seen is None:
        raise TaskNotFound(f"no task with guid {guid!r}")
    return seen


async def create_task(request: web.Request) -> web.Response:
    deps = _deps(request)
    task = await parse_create_body(request, lambda data: parse_task(data, deps.clock()),
                                   images=deps.images, what="task")
    if not await deps.db.create(task):
        raise TaskGuidAlreadyExists(f"a task with guid {task.task_guid!r} already exists")
    log.info("task-created", task_guid=task.task_guid, image=task.definition.image)
    return _json(task.to_dict(), 201)


async def list_tasks(request: web.Request) -> web.Response:
    domain = request.query.get("domain")
    return _json([t.to_dict() for t in await _deps(request).db.list_tasks(domain)])


async def get_task(request: web.Request) -> web.Response:
    seen = await _existing(_deps(request).db, request.match_info["task_guid"])
    return _json(seen.task.to_dict())


async def cancel_task(request: web.Request) -> web.Response:
    deps = _deps(request)
    guid = request.match_info["task_guid"]
    for _ in range(CAS_ATTEMPTS):
        seen = await _existing(deps.db, guid)
        if seen.task.state in (TaskState.COMPLETED, TaskState.RESOLVING):
            raise InvalidTaskState(f"task {guid!r} is {seen.task.state}: it cannot be cancelled")
        if await deps.db.cancel(seen, deps.clock()):
            log.info("task-cancelled", task_guid=guid, was=str(seen.task.state))
            return web.Response(status=204)
    raise ModificationConflict(f"task {guid!r} kept changing; retry")


async def delete_task(request: web.Request) -> web.Response:
    deps = _deps(request)
    guid = request.match_info["task_guid"]
    seen = await _existing(deps.db, guid)
    if seen.task.state != TaskState.COMPLETED:
        raise InvalidTaskState(
            f"task {guid!r} is {seen.task.state}: only a COMPLETED task can be deleted"
        )
    # Diego resolves, then deletes; both happen here in one compare-and-delete, so no one sees
    # the RESOLVING in between.
    if not await deps.db.remove(seen):
        raise ModificationConflict(f"task {guid!r} changed meanwhile; retry")
    log.info("task-deleted", task_guid=guid)
    return web.Response(status=204)


def register_task_routes(app: web.Application, deps: TaskApiDeps) -> None:
    app[TASK_DEPS] = deps
    app.router.add_post("/v1/tasks", create_task)
    app.router.add_get("/v1/tasks", list_tasks)
    app.router.add_get("/v1/tasks/{task_guid}", get_task)
    app.router.add_delete("/v1/tasks/{task_guid}", delete_task)
    app.router.add_post("/v1/tasks/{task_guid}/cancel", cancel_task)
