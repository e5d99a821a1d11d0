"""The brain's functions component: the CRUD API, the invocation port and its route.

Every brain serves invocations on a port of its own (no credentials: a function's route is
public like an app's) and announces it as the service record `functions/<instance_id>`, whose
host names are every function's NAME.<domain>. The router routes service records already, so
a function's route needs no change in the router: it appears when the record is rewritten
(one etcd put per function change) and goes with the brain's lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import structlog
from aiohttp import web

from lattice.brain.config import BrainConfig
from lattice.brain.function_view import FunctionView
from lattice.brain.functions_api import FunctionApiDeps, register_function_routes
from lattice.brain.functions_db import FunctionDB
from lattice.brain.images import ImageInspector
from lattice.brain.invoker import FUNCTIONS_SERVICE, Invoker, callback_payload
from lattice.brain.state import ClusterView
from lattice.brain.task_view import TaskView
from lattice.brain.tasks_db import TaskDB
from lattice.models import ServiceRecord, Task
from lattice.models.function import MAX_STDIN_BYTES
from lattice.store import Etcd, LeasedRecords, StoreError, keys

log = structlog.get_logger("lattice.brain.functions")


BRAIN_HEADER = "X-Lattice-Brain"   # which brain answered: its service record's instance id


def create_invocation_app(invoker: Invoker, instance_id: str) -> web.Application:
    # The body is the task's stdin: aiohttp refuses more than the bound with a 413.
    app = web.Application(client_max_size=MAX_STDIN_BYTES)
    app.router.add_route("*", "/{tail:.*}", invoker.handle)

    async def name_the_brain(_: web.Request, response: web.StreamResponse) -> None:
        response.headers[BRAIN_HEADER] = instance_id

    app.on_response_prepare.append(name_the_brain)
    return app


class FunctionsService:
    def __init__(self, *, etcd: Etcd, app: web.Application, functions: FunctionView,
                 view: ClusterView, images: ImageInspector, tasks: TaskView,
                 config: BrainConfig, instance_id: str, clock: Callable[[], int]) -> None:
        self._etcd = etcd
        self._config = config
        self._instance_id = instance_id
        self.functions = functions
        self.db = FunctionDB(etcd)
        register_function_routes(app, FunctionApiDeps(
            db=self.db, functions=functions, view=view, images=images,
            domain=config.domain, clock=clock,
        ))
        self.invoker = Invoker(functions=functions, tasks=tasks, db=self.db,
                               task_db=TaskDB(etcd), clock=clock)
        self._runner = web.AppRunner(create_invocation_app(self.invoker, instance_id),
                                     access_log=None,
                                     handle_signals=False)
        self._tasks: list[asyncio.Task[None]] = []
        self._presence: LeasedRecords | None = None
        self._address = ""

    async def callback_payload(self, task: Task) -> dict[str, Any]:
        return await callback_payload(self.db, task)

    def _record(self) -> bytes:
        record = ServiceRecord(name=FUNCTIONS_SERVICE, instance_id=self._instance_id,
                               address=self._address,
                               hostnames=tuple(sorted(self.functions.routes())))
        return json.dumps(record.to_dict()).encode()

    async def start(self) -> None:
        """Serve invocations and announce every function's route; returns once announced."""
        self._tasks.append(asyncio.create_task(self.functions.informer.run(),
                                               name="function-informer"))
        await self.functions.informer.synced.wait()
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._config.host, 0)
        await site.start()
        self._address = f"{self._config.host}:{self._runner.addresses[0][1]}"
        key = keys.service(FUNCTIONS_SERVICE, self._instance_id)
        self.functions.changed.clear()
        self._presence = LeasedRecords(self._etcd, {key: self._record()})
        self._tasks.append(asyncio.create_task(self._presence.run(), name="function-record"))
        self._tasks.append(asyncio.create_task(self._publish(key), name="function-routes"))
        self._tasks.append(asyncio.create_task(self.invoker.sweep_forever(),
                                               name="function-sweep"))
        await self._presence.registered.wait()
        log.info("functions-started", address=self._address)

    async def _publish(self, key: str) -> None:
        """Rewrite the record whenever the functions change."""
        assert self._presence is not None
        while True:
            await self.functions.changed.wait()
            self.functions.changed.clear()
            try:
                await self._presence.update(key, self._record())
            except StoreError as exc:
                log.warning("function-routes-not-published", error=str(exc))
                self.functions.changed.set()
                await asyncio.sleep(1.0)

    async def stop(self) -> None:
        """Stop accepting, finish invocations in flight, then withdraw the route."""
        await self._runner.cleanup()
        await self.invoker.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._presence is not None:
            await self._presence.release()
