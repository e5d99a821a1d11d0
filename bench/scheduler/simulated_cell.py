"""SIMULATION ONLY: cells that run no containers, for the scale benchmark (scale.py beside it).

A SimulatedCell does what a real cell does in etcd, with the real code for it, and nothing on a
Docker engine:

    presence   /lattice/v1/cells/<id> under its own 5 s lease   lattice.store.LeasedRecords,
                                                                  lattice.cell.presence
    work list  list-then-watch /lattice/v1/assignments/<id>/    lattice.store.Informer
    reports    read the run info, then CLAIMED with an address   lattice.cell.reports
               and ports (the "container started"), then           .ActualReports
               RUNNING (the "health check passed")

What is simulated: no container is created, the ports are made up, the health check passes at
once. So the figures measure the brain and etcd, not Docker.

What is shared, so that 1,000 cells fit in one process on 2 cores: one etcd client (one gRPC
channel; aetcd multiplexes every watch over one stream) and one pool of workers with one
KeyedWorkQueue for all cells, where each real cell has its own client and 4 workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from lattice.cell.config import CellConfig
from lattice.cell.errors import CellError
from lattice.cell.presence import PRESENCE_TTL_S, presence_records
from lattice.cell.reports import ActualReports
from lattice.cell.work_queue import KeyedWorkQueue
from lattice.models import Assignment, Capacity, PortMapping
from lattice.store import Change, Etcd, Informer, LeasedRecords, StoreError, keys

FAKE_PORTS = itertools.cycle(range(40000, 60000))   # never listened on: nothing dials them

Key = tuple[str, int]       # (process_guid, index)
MAX_RETRIES = 10_000        # failed reports retried, in all; past that etcd is clearly unwell


@dataclass
class Progress:
    """What the fleet has seen: when each instance was first assigned, and where it last became
    RUNNING (cell id, monotonic time)."""

    assigned: dict[Key, float] = field(default_factory=dict)
    running: dict[Key, tuple[str, float]] = field(default_factory=dict)
    failures: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class SimulatedCell:
    """One simulated cell. Its work runs on the fleet's shared workers."""

    def __init__(self, fleet: SimulatedFleet, cell_id: str, capacity: Capacity) -> None:
        self.cell_id = cell_id
        self._fleet = fleet
        config = CellConfig(cell_id=cell_id, address="127.0.0.1",
                            etcd_endpoints=fleet.etcd.endpoints)
        self.presence = LeasedRecords(fleet.etcd, presence_records(config, capacity),
                                      ttl_s=PRESENCE_TTL_S)
        self.informer = Informer(fleet.etcd, keys.assignments_of(cell_id), self._on_change)
        self.reports = ActualReports(fleet.etcd, cell_id)
        self.assignments: dict[str, Assignment] = {}     # by assignment key
        self.started: set[str] = set()                   # instance guids reported already
        self.alive = True
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self.informer.run()),
                       asyncio.create_task(self.presence.run())]

    def _on_change(self, change: Change) -> None:
        if change.new is None:
            self.assignments.pop(change.key, None)
            return
        assignment = Assignment.from_dict(json.loads(change.new))
        self.assignments[change.key] = assignment
        key = (assignment.process_guid, assignment.index)
        self._fleet.progress.assigned.setdefault(key, time.monotonic())
        self._fleet.progress.changed.set()
        self._fleet.queue.push(f"{self.cell_id} {change.key}")

    async def process(self, assignment_key: str) -> None:
        """Start one assigned instance, as far as etcd can tell: CLAIMED with ports, RUNNING."""
        assignment = self.assignments.get(assignment_key)
        if not self.alive or assignment is None or assignment.instance_guid in self.started:
            return
        self.started.add(assignment.instance_guid)
        try:
            await self._report(assignment)
        except (StoreError, CellError):
            self.started.discard(assignment.instance_guid)     # the fleet retries it
            raise

    async def _report(self, assignment: Assignment) -> None:
        run = await self.reports.run_info(assignment.process_guid)
        if run is None:
            return
        ports = tuple(PortMapping(port, next(FAKE_PORTS)) for port in run.ports)
        recorded = await self.reports.started(
            assignment, "127.0.0.1", ports, f"simulated-{assignment.instance_guid[:12]}",
            adopted=False, run_version=run.version)
        if recorded is None or not self.alive:
            return
        if await self.reports.running(assignment) is not None:
            key = (assignment.process_guid, assignment.index)
            self._fleet.progress.running[key] = (self.cell_id, time.monotonic())
            self._fleet.progress.changed.set()

    async def lose(self, *, expire: bool) -> None:
        """The cell dies: it stops working and its presence goes, at once (`expire` False: the
        lease is revoked, as on a clean stop) or when the lease runs out (`expire` True: a crash
        or a cut network, up to the 5 s TTL later)."""
        self.alive = False
        for task in self._tasks:
            task.cancel()
        if not expire:
            await self.presence.release()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def stop(self) -> None:
        await self.lose(expire=False)


class SimulatedFleet:
    """Many SimulatedCells on one etcd client and one shared pool of workers."""

    def __init__(self, etcd: Etcd, *, cells: int, capacity: Capacity, workers: int = 64,
                 name: Callable[[int], str] = lambda i: f"sim-cell-{i:04d}") -> None:
        self.etcd = etcd
        self.progress = Progress()
        self.queue = KeyedWorkQueue()
        self.cells = {name(i): SimulatedCell(self, name(i), capacity) for i in range(cells)}
        self._workers = workers
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Every cell watching its assignments and present; returns once all are registered."""
        for cell in self.cells.values():
            cell.start()
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self._workers)]
        await asyncio.gather(*(c.informer.synced.wait() for c in self.cells.values()))
        await asyncio.gather(*(c.presence.registered.wait() for c in self.cells.values()))

    async def _work(self) -> None:
        while True:
            item = await self.queue.get()
            try:
                cell_id, _, assignment_key = item.partition(" ")
                await self.cells[cell_id].process(assignment_key)
            except (StoreError, CellError):
                self.progress.failures += 1
                if self.progress.failures <= MAX_RETRIES:
                    self.queue.push(item)
            finally:
                self.queue.done(item)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.gather(*(c.stop() for c in self.cells.values() if c.alive))
