"""`lattice brain`: the API, the auctioneer and the converger in one process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from typing import NoReturn

import structlog
from aiohttp import web

from lattice.brain.api import ApiDeps, create_app
from lattice.brain.autoscale_api import AutoscaleApiDeps, register_autoscale_routes
from lattice.brain.autoscale_db import AutoscaleDB
from lattice.brain.autoscaler import Autoscaler
from lattice.brain.config import BrainConfig
from lattice.brain.controller import Controller, ControllerSettings
from lattice.brain.db import LRPDB
from lattice.brain.events import ClusterEvents, register_event_routes
from lattice.brain.function_view import FunctionView
from lattice.brain.functions import FunctionsService
from lattice.brain.images import ImageInspector
from lattice.brain.leader import LeaderElection
from lattice.brain.state import ClusterView
from lattice.brain.task_controller import TaskController, TaskSettings
from lattice.brain.task_view import TaskView
from lattice.brain.tasks_api import TaskApiDeps, register_task_routes
from lattice.brain.tasks_db import TaskDB
from lattice.models import DEFAULT_RESTART_POLICY, ServiceRecord
from lattice.store import Etcd, LeasedRecords, keys

log = structlog.get_logger("lattice.brain")


class ComponentStopped(RuntimeError):
    """A part of the brain that runs for the process's life ended: the process must end too."""


async def _until_one_stops(tasks: list[asyncio.Task[None]]) -> NoReturn:
    """Wait on the brain's long-running parts; raise as soon as one ends. Each runs forever
    until cancelled, so one that ends has failed: above all the election (a term whose work would
    not stop, brain/leader.py). A brain without it would serve the API but never lead again;
    ending the process lets its supervisor start a whole one."""
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    stopped = done.pop()
    error = None if stopped.cancelled() else stopped.exception()
    log.error("brain-component-stopped", component=stopped.get_name(), error=repr(error))
    raise ComponentStopped(f"{stopped.get_name()} stopped: {error!r}") from error


async def serve(config: BrainConfig, *, ready: asyncio.Event | None = None) -> None:
    """Run until cancelled; then shut down in order: stop accepting, stop work, release."""
    etcd = Etcd(config.etcd_endpoints)
    view = ClusterView(etcd)
    db = LRPDB(etcd, on_write=view.learn)
    images = ImageInspector()
    controller = Controller(
        view=view,
        db=db,
        policy=DEFAULT_RESTART_POLICY,
        settings=ControllerSettings(
            converge_interval_s=config.converge_interval_s, cell_grace_s=config.cell_grace_s
        ),
    )
    function_view = FunctionView(etcd, config.domain)
    app = create_app(ApiDeps(db=db, view=view, images=images, domain=config.domain,
                             clock=time.time_ns),
                     credentials=config.credentials)
    autoscale_db = AutoscaleDB(etcd, db, view)
    register_autoscale_routes(app, AutoscaleApiDeps(lrps=db, db=autoscale_db))
    autoscaler = Autoscaler(view=view, db=autoscale_db, etcd=etcd)
    register_task_routes(app, TaskApiDeps(db=TaskDB(etcd), images=images, clock=time.time_ns))
    task_view = TaskView(etcd)
    view.extra_usage = task_view.usage
    functions = FunctionsService(etcd=etcd, app=app, functions=function_view, view=view,
                                 images=images, tasks=task_view, config=config,
                                 instance_id=uuid.uuid4().hex, clock=time.time_ns)
    task_controller = TaskController(
        tasks=task_view, view=view, db=TaskDB(etcd),
        settings=TaskSettings(cell_grace_s=config.cell_grace_s),
        payload=functions.callback_payload,
    )
    election = LeaderElection(etcd, identity=uuid.uuid4().hex)
    events = ClusterEvents(etcd)
    register_event_routes(app, events.hub)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    tasks: list[asyncio.Task[None]] = []
    presence: LeasedRecords | None = None
    try:
        tasks = [asyncio.create_task(informer.run(), name=f"informer {informer.prefix}")
                 for informer in view.informers]
        tasks.append(asyncio.create_task(task_view.informer.run(), name="task informer"))
        tasks.append(asyncio.create_task(events.run(), name="events"))
        await view.wait_synced()
        await task_view.informer.synced.wait()
        # Every brain serves the API; only the leader converges and places (brain/leader.py).
        tasks.append(asyncio.create_task(election.run_while_leader(
            controller.run, task_controller.run, autoscaler.run), name="leader-election"))
        await runner.setup()
        site = web.TCPSite(runner, config.host, config.port)
        await site.start()
        port = runner.addresses[0][1]
        record = ServiceRecord(
            name="receptor",
            instance_id=uuid.uuid4().hex,
            address=f"{config.host}:{port}",
            hostnames=(f"receptor.{config.domain}",),
        )
        record_key = keys.service(record.name, record.instance_id)
        presence = LeasedRecords(etcd, {record_key: json.dumps(record.to_dict()).encode()})
        tasks.append(asyncio.create_task(presence.run(), name="service record"))
        await presence.registered.wait()
        await functions.start()
        await election.first_attempt_done.wait()
        if election.is_leader:
            await controller.first_pass_done.wait()
        log.info("brain-started", address=record.address, domain=config.domain)
        if ready is not None:
            ready.set()
        await _until_one_stops(tasks)
    finally:
        await functions.stop()          # invocations first: they need the store and the API
        await runner.cleanup()          # stop accepting and finish requests in flight
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if presence is not None:
            await presence.release()
        await images.close()
        await etcd.close()
        log.info("brain-stopped")
