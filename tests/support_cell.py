"""Helpers for the cell's integration tests: play the brain in etcd, run a cell, wait.

The tests write the records the brain would write (RunInfo, a CLAIMED ActualLRP and its
assignment, in one transaction) and watch what the cell does with a real Docker engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import docker
import docker.errors

from lattice.cell import CellConfig, remove_cell_containers, serve
from lattice.cell.healthcheck import HealthSettings
from lattice.models import (
    ActualLRP,
    ActualState,
    Assignment,
    ModificationTag,
    PortMonitor,
    RunInfo,
    SchedulingInfo,
)
from lattice.store import Delete, Etcd, Put, ensure_cluster_id, keys
from logagg.envelope import Envelope

T = TypeVar("T")
DEADLINE_S = 30.0


async def wait_for(check: Callable[[], Awaitable[T | None]] | Callable[[], T | None],
                   what: str, within_s: float = DEADLINE_S, every: float = 0.05) -> T:
    """Poll `check` (sync or async) until it returns something truthy; fail at the deadline."""
    deadline = time.monotonic() + within_s
    last: T | None = None
    while time.monotonic() < deadline:
        result = check()
        last = await result if inspect.isawaitable(result) else result
        if last:
            return last
        await asyncio.sleep(every)
    raise AssertionError(f"timed out after {within_s} s waiting for {what} (last: {last!r})")


class ListSink:
    """Collects envelopes in a list: the cell's log output, for assertions."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    def emit(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)

    def of(self, app_id: str, source_type: str = "APP") -> list[Envelope]:
        return [e for e in self.envelopes if e.app_id == app_id and e.source_type == source_type]


def encode(data: object) -> bytes:
    return json.dumps(data).encode()


def run_info(guid: str, image: str, *, command: tuple[str, ...] = (), monitor: int | None = 8080,
             ports: tuple[int, ...] = (8080,)) -> RunInfo:
    return RunInfo(process_guid=guid, image=image, command=command, ports=ports,
                   monitor=PortMonitor(port=monitor))


async def desire(etcd: Etcd, run: RunInfo, instances: int) -> None:
    scheduling = SchedulingInfo(
        process_guid=run.process_guid, instances=instances, memory_mb=64, disk_mb=0,
        cpu_weight=50, routes=(), modification_tag=ModificationTag(uuid.uuid4().hex),
    )
    await etcd.txn([], [
        Put(keys.scheduling(run.process_guid), encode(scheduling.to_dict())),
        Put(keys.run(run.process_guid), encode(run.to_dict())),
    ])


async def claim(etcd: Etcd, cell_id: str, guid: str, index: int,
                memory_mb: int = 64) -> Assignment:
    """What the auctioneer does: the ActualLRP CLAIMED and the assignment, in one txn."""
    instance_guid = uuid.uuid4().hex
    actual = ActualLRP(process_guid=guid, index=index, instance_guid=instance_guid,
                       state=ActualState.CLAIMED, since=time.time_ns(), cell_id=cell_id)
    assignment = Assignment(process_guid=guid, index=index, instance_guid=instance_guid,
                            memory_mb=memory_mb, disk_mb=0, cpu_weight=50)
    await etcd.txn([], [
        Put(keys.actual(guid, index), encode(actual.to_dict())),
        Put(keys.assignment(cell_id, guid, index), encode(assignment.to_dict())),
    ])
    return assignment


async def unassign(etcd: Etcd, cell_id: str, guid: str, index: int) -> None:
    await etcd.txn([], [Delete(keys.assignment(cell_id, guid, index))])


async def actual_of(etcd: Etcd, guid: str, index: int) -> ActualLRP | None:
    kv = await etcd.get(keys.actual(guid, index))
    return None if kv is None else ActualLRP.from_dict(json.loads(kv.value))


async def actual_in(etcd: Etcd, guid: str, index: int, state: ActualState) -> ActualLRP | None:
    actual = await actual_of(etcd, guid, index)
    return actual if actual is not None and actual.state == state else None


def cell_containers(client: docker.DockerClient, cell_id: str) -> list[dict[str, object]]:
    items: list[dict[str, object]] = client.api.containers(
        all=True, filters={"label": [f"lattice.cell_id={cell_id}"]}
    )
    return items


def container_exists(client: docker.DockerClient, container_id: str) -> bool:
    try:
        client.api.inspect_container(container_id)
    except docker.errors.NotFound:
        return False
    return True


async def http_get(port: int) -> str | None:
    """GET / on 127.0.0.1:port; None while nothing answers."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 2)
    except (OSError, TimeoutError):
        return None
    try:
        writer.write(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")
        await writer.drain()
        body = await asyncio.wait_for(reader.read(), 5)
        return body.decode(errors="replace")
    except (OSError, TimeoutError):
        return None
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


@dataclass
class CellUnderTest:
    """A cell served in this event loop, startable and stoppable more than once."""

    etcd_endpoint: str
    cell_id: str = field(default_factory=lambda: f"test-{uuid.uuid4().hex[:8]}")
    sink: ListSink = field(default_factory=ListSink)
    sync_interval_s: float = 1.0
    health: HealthSettings | None = None
    publish_logs: bool = False        # True: no sink; the cell publishes to the log aggregator
    metrics_interval_s: float = 5.0
    metrics_disk_interval_s: float = 30.0
    # None by default: tests count a cell's containers, and only test_cell_sandboxes.py wants
    # the prewarmed ones among them.
    warm_sandboxes: int = 0
    task: asyncio.Task[None] | None = None

    @property
    def config(self) -> CellConfig:
        return CellConfig(cell_id=self.cell_id, etcd_endpoints=self.etcd_endpoint,
                          memory_mb=4096, disk_mb=4096, sync_interval_s=self.sync_interval_s,
                          metrics_interval_s=self.metrics_interval_s,
                          metrics_disk_interval_s=self.metrics_disk_interval_s,
                          warm_sandboxes=self.warm_sandboxes)

    async def start(self) -> None:
        ready = asyncio.Event()
        self.task = asyncio.create_task(
            serve(self.config, ready=ready, log_sink=None if self.publish_logs else self.sink,
                  health=self.health)
        )
        ready_wait = asyncio.create_task(ready.wait())
        done, _ = await asyncio.wait({self.task, ready_wait}, timeout=DEADLINE_S,
                                     return_when=asyncio.FIRST_COMPLETED)
        if ready_wait not in done:
            ready_wait.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ready_wait
            if self.task in done:
                self.task.result()            # raises what made serve() fail
            raise AssertionError(f"cell {self.cell_id} not ready after {DEADLINE_S} s")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None

    async def close(self) -> None:
        await self.stop()
        etcd = Etcd(self.config.etcd_endpoints)
        try:
            cluster_id = await ensure_cluster_id(etcd)
        finally:
            await etcd.close()
        await asyncio.to_thread(remove_cell_containers, cluster_id, self.cell_id)
