"""The rep: keeps this cell's containers in line with its assignments (Diego's rep + executor).

Two triggers feed one idempotent queue keyed by instance guid (STYLE.md item 7):

    assignment informer (etcd watch) ──┐
    Docker `die`/`destroy` events    ──┼──> KeyedWorkQueue ──> workers ──> _process(guid)
    periodic full sync (containers   ──┘
      vs assignments, every sync_interval_s)

`_process` looks at the state *now* (the assignment in the informer's cache, the instance's
runner, the containers labelled with it) and does the one thing that state calls for: start a
runner, ask the runner to look at its container again, ask it to stop, or remove a container
nobody owns. Each instance's container is owned by its InstanceRunner (runner.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict

import structlog

from lattice.cell.docker_engine import ContainerFacts, DockerEngine
from lattice.cell.docker_streams import ContainerEvent, DockerStreams
from lattice.cell.errors import CellError, DockerStreamError, DockerUnavailable
from lattice.cell.runner import InstanceRunner, RunnerDeps
from lattice.cell.sandboxes import SandboxPool
from lattice.cell.spec import LABEL_INSTANCE_GUID, LABEL_SANDBOX, LABEL_SANDBOX_ID, LABEL_TASK_GUID
from lattice.cell.work_queue import KeyedWorkQueue
from lattice.models import Assignment
from lattice.store import Change, Etcd, Informer, StoreError, keys

log = structlog.get_logger("lattice.cell.rep")

WORKERS = 4
EVENTS_RETRY_INITIAL_S = 0.1
EVENTS_RETRY_MAX_S = 5.0
# A container's end: `die` when its process exits, `destroy` when it is removed behind our back.
WATCHED_ACTIONS = frozenset({"die", "destroy"})


class Rep:
    def __init__(self, *, deps: RunnerDeps, etcd: Etcd, sync_interval_s: float) -> None:
        self._deps = deps
        self._sync_interval_s = sync_interval_s
        self._informer = Informer(
            etcd, keys.assignments_of(deps.cell_id), self._on_assignment_change
        )
        self._assignments: dict[str, Assignment] = {}     # by instance guid
        self._guid_at: dict[str, str] = {}                # assignment key -> instance guid
        self._runners: dict[str, InstanceRunner] = {}     # by instance guid
        self._queue = KeyedWorkQueue()
        self._tasks: list[asyncio.Task[None]] = []
        self._events_connected = asyncio.Event()
        self._sync_now = asyncio.Event()

    @property
    def engine(self) -> DockerEngine:
        return self._deps.engine

    @property
    def streams(self) -> DockerStreams:
        return self._deps.streams

    @property
    def sandboxes(self) -> SandboxPool | None:
        return self._deps.sandboxes

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe to assignments and to Docker's events, then adopt or clean up whatever
        containers this cell already has, then take work. Returns once work is flowing."""
        self._tasks.append(asyncio.create_task(self._informer.run(), name="cell-assignments"))
        self._tasks.append(asyncio.create_task(self._follow_events(), name="cell-docker-events"))
        # Events before the listing: a container that dies in between is still seen.
        await self._informer.synced.wait()
        await self._events_connected.wait()
        # Before any worker runs: a worker's fresh report must not be overwritten by this one.
        await self._forget_gone_containers()
        self._tasks.extend(
            asyncio.create_task(self._work(), name=f"cell-worker-{i}") for i in range(WORKERS)
        )
        await self.sync_once()
        self._tasks.append(asyncio.create_task(self._sync_loop(), name="cell-sync"))

    async def _forget_gone_containers(self) -> None:
        """Before the cell says it is present: no record may point at a container that is gone.

        After a restart of the whole box the records still say RUNNING at the old ports; they
        must not, even for the second it takes to start the new containers.
        """
        running = {
            c.instance_guid
            for c in await self.engine.list_cell_containers(
                self._deps.cluster_id, self._deps.cell_id
            )
            if c.running
        }
        for guid, assignment in list(self._assignments.items()):
            if guid not in running:
                await self._deps.reports.container_gone(assignment)

    async def stop(self) -> None:
        """Stop taking work, then end every runner; containers keep running for adoption."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await asyncio.gather(*(runner.cancel() for runner in self._runners.values()))
        self._runners.clear()

    # -- triggers ----------------------------------------------------------------------------

    def _on_assignment_change(self, change: Change) -> None:
        old_guid = self._guid_at.pop(change.key, None)
        if old_guid is not None:
            self._assignments.pop(old_guid, None)
            self._queue.push(old_guid)
        if change.new is None:
            return
        try:
            assignment = Assignment.from_dict(json.loads(change.new))
        except (ValueError, KeyError, TypeError) as exc:
            log.error("assignment-unreadable", key=change.key, error=str(exc))
            return
        self._guid_at[change.key] = assignment.instance_guid
        self._assignments[assignment.instance_guid] = assignment
        self._queue.push(assignment.instance_guid)

    def _on_docker_event(self, event: ContainerEvent) -> None:
        if event.action not in WATCHED_ACTIONS:
            return
        if LABEL_SANDBOX in event.attributes:
            self._on_sandbox_gone(event)
            return
        sandbox_id = event.attributes.get(LABEL_SANDBOX_ID)
        if event.action == "destroy" and sandbox_id and self.sandboxes is not None:
            self.sandboxes.discard(sandbox_id)     # its instance's container is gone: it goes too
        guid = event.attributes.get(LABEL_INSTANCE_GUID)
        if guid:
            self._queue.push(guid)

    def _on_sandbox_gone(self, event: ContainerEvent) -> None:
        """A sandbox died or was removed: out of the pool, and its instance, if any, crashes
        (its ports went with the sandbox's docker-proxies) unless the pool removed it, after
        that instance's container."""
        pool = self.sandboxes
        if pool is not None and not pool.gone(event.container_id,
                                              destroyed=event.action == "destroy"):
            return
        for runner in self._runners.values():
            if runner.sandbox_id == event.container_id:
                runner.sandbox_lost()

    async def _follow_events(self) -> None:
        delay = EVENTS_RETRY_INITIAL_S

        def connected() -> None:
            nonlocal delay
            delay = EVENTS_RETRY_INITIAL_S
            if self._events_connected.is_set():
                # Events may have been missed while the stream was down: look at everything.
                self._sync_now.set()
            self._events_connected.set()
            log.info("docker-events-connected")

        while True:
            try:
                await self.streams.follow_events(
                    self._deps.cluster_id, self._deps.cell_id, self._on_docker_event, connected
                )
            except (DockerStreamError, DockerUnavailable) as exc:
                log.warning("docker-events-lost", error=str(exc))
            await asyncio.sleep(delay)
            delay = min(delay * 2, EVENTS_RETRY_MAX_S)

    async def _sync_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._sync_now.wait(), self._sync_interval_s)
            self._sync_now.clear()
            try:
                await self.sync_once()
            except (CellError, StoreError) as exc:
                log.warning("sync-failed", error=str(exc))

    async def sync_once(self) -> None:
        """Compare assignments, runners and containers; queue every instance that looks off."""
        containers = await self.engine.list_cell_containers(
            self._deps.cluster_id, self._deps.cell_id
        )
        by_guid: dict[str, list[ContainerFacts]] = defaultdict(list)
        if self.sandboxes is not None:
            self.sandboxes.sweep(containers)
        for container in containers:
            if container.labels.get(LABEL_TASK_GUID) or LABEL_SANDBOX in container.labels:
                continue        # a task's container (cell/tasks.py) or a sandbox (sandboxes.py)
            if container.instance_guid:
                by_guid[container.instance_guid].append(container)
            else:
                # Labelled with this cell but with no instance: nobody can own it.
                log.info("orphan-removed", container_id=container.id[:12])
                await self.engine.remove(container.id)
        suspects: set[str] = set()
        for guid in self._assignments:
            runner = self._runners.get(guid)
            if runner is None or runner.done:
                suspects.add(guid)
            elif runner.container_id and not any(
                c.id == runner.container_id and c.running for c in by_guid.get(guid, [])
            ):
                suspects.add(guid)     # a `die` event we did not get
        suspects.update(guid for guid in by_guid if guid not in self._assignments)
        suspects.update(guid for guid in self._runners if guid not in self._assignments)
        for guid in sorted(suspects):
            self._queue.push(guid)

    # -- operations --------------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            guid = await self._queue.get()
            try:
                await self._process(guid)
            except (CellError, StoreError) as exc:
                log.warning("operation-failed", instance_guid=guid, error=str(exc))
            finally:
                self._queue.done(guid)

    async def _process(self, guid: str) -> None:
        assignment = self._assignments.get(guid)
        runner = self._runners.get(guid)
        if runner is not None and runner.done:
            del self._runners[guid]
            runner = None
        if assignment is not None:
            if runner is None:
                runner = InstanceRunner(self._deps, assignment)
                self._runners[guid] = runner
                runner.start()
            else:
                runner.update(assignment)
        elif runner is not None:
            runner.stop()
        else:
            for container in await self.engine.list_cell_containers(
                self._deps.cluster_id, self._deps.cell_id, guid
            ):
                log.info("orphan-removed", instance_guid=guid, container_id=container.id[:12])
                await self.engine.remove(container.id)
