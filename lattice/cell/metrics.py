"""Container metrics: every few seconds, each running instance's CPU %, memory and disk, to etcd.

    every interval_s:  list this cell's running instance containers ─┐ (own thread pool,
      (every disk_interval_s the listing also asks for sizes)        │  own Docker client)
                       one-shot `docker stats` of each, concurrently ─┤
                       CPU % from this and the previous reading ──────┤
                       put /lattice/v1/metrics/<guid>/<index> under the cell's metrics lease,
                       delete the keys of instances no longer running here

The sampler runs beside the rep and shares nothing with it but etcd: a slow engine delays the
samples, never the rep's work (its Docker calls have their own pool). Disk is the writable
layer's size (`docker ps --size`, SizeRw), which makes the engine walk each container's files:
it is measured every disk_interval_s (30 s by default), not every sample.

The keys live under one lease of this cell (TTL three intervals), so a dead cell's samples
vanish by themselves; a clean stop revokes it (metrics_store.py).
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import docker
import docker.errors
import structlog

from lattice.cell.container_stats import CpuReading, StatsReading, cpu_percent, stats_reading
from lattice.cell.docker_engine import cell_filters, translated_errors
from lattice.cell.errors import CellError
from lattice.cell.metrics_store import MetricsStore, lease_ttl_s
from lattice.cell.spec import LABEL_INDEX, LABEL_INSTANCE_GUID, LABEL_PROCESS_GUID, LABEL_TASK_GUID
from lattice.models.metrics import InstanceMetrics
from lattice.store import Etcd, StoreError

log = structlog.get_logger("lattice.cell.metrics")

T = TypeVar("T")
Clock = Callable[[], int]
STATS_WORKERS = 4


@dataclass(frozen=True)
class InstanceContainer:
    """A running container of an instance, from the engine's listing."""

    id: str
    process_guid: str
    index: int
    instance_guid: str
    created: int                   # s since the epoch: the newest wins a shared index
    disk_bytes: int | None = None  # only when the listing asked for sizes


def instance_containers(items: list[dict[str, Any]]) -> list[InstanceContainer]:
    """The listing's instance containers (tasks' and unlabelled ones left out)."""
    found = []
    for item in items:
        labels = item.get("Labels") or {}
        if labels.get(LABEL_TASK_GUID) or not labels.get(LABEL_INSTANCE_GUID):
            continue
        try:
            index = int(labels.get(LABEL_INDEX, ""))
        except ValueError:
            continue
        disk: int | None = None
        if "SizeRootFs" in item:
            # The engine leaves SizeRw out when it is 0 (Go's omitempty).
            disk = int(item.get("SizeRw") or 0)
        found.append(InstanceContainer(
            id=item["Id"], process_guid=labels.get(LABEL_PROCESS_GUID, ""), index=index,
            instance_guid=labels[LABEL_INSTANCE_GUID], created=int(item.get("Created") or 0),
            disk_bytes=disk,
        ))
    return [c for c in found if c.process_guid]


class MetricsSampler:
    def __init__(
        self,
        *,
        etcd: Etcd,
        cluster_id: str,
        cell_id: str,
        interval_s: float,
        disk_interval_s: float,
        clock: Clock = time.time_ns,
        workers: int = STATS_WORKERS,
    ) -> None:
        self._cluster_id = cluster_id
        self._cell_id = cell_id
        self._interval_s = interval_s
        self._disk_interval_s = disk_interval_s
        self._clock = clock
        self._workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="metrics")
        self._client: docker.DockerClient | None = None
        self._client_lock = threading.Lock()
        self._store = MetricsStore(etcd, ttl_s=lease_ttl_s(interval_s))
        self._cpu: dict[str, CpuReading] = {}          # by container id: the last reading
        self._disk: dict[str, int] = {}                # by container id: the last size
        self._next_disk = 0.0                          # monotonic: when to measure disk again
        self._said_empty = False

    # -- the blocking halves, in the sampler's own threads ------------------------------------

    def _docker(self) -> docker.DockerClient:
        with self._client_lock:
            if self._client is None:
                with translated_errors("connecting to Docker"):
                    self._client = docker.from_env(max_pool_size=self._workers)
            return self._client

    def _list(self, with_size: bool) -> list[dict[str, Any]]:
        with translated_errors(f"listing the containers of cell {self._cell_id}"):
            items: list[dict[str, Any]] = self._docker().api.containers(
                filters=cell_filters(self._cluster_id, self._cell_id), size=with_size
            )
        return items

    def _stats(self, container_id: str) -> dict[str, Any] | None:
        """One reading; None if the container is gone."""
        try:
            with translated_errors(f"reading the stats of {container_id[:12]}"):
                stats: dict[str, Any] = self._docker().api.stats(
                    container_id, stream=False, one_shot=True
                )
        except CellError as exc:
            if isinstance(exc.__cause__, docker.errors.NotFound):
                return None
            raise
        return stats

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args))

    # -- the loop -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Sample until cancelled; a failed round is logged and the next one tried."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await self.sample_once()
            except (CellError, StoreError) as exc:
                log.warning("metrics-sample-failed", error=str(exc))
            await asyncio.sleep(max(0.0, started + self._interval_s - loop.time()))

    async def sample_once(self) -> list[InstanceMetrics]:
        """One round: read every running instance container, write the samples; them."""
        now = time.monotonic()
        with_size = now >= self._next_disk
        items = await self._call(self._list, with_size)
        if with_size:
            self._next_disk = now + self._disk_interval_s
        containers = sorted(instance_containers(items), key=lambda c: c.created)
        readings = await asyncio.gather(*(self._read(c) for c in containers))
        samples: dict[tuple[str, int], InstanceMetrics] = {}
        for container, reading in zip(containers, readings, strict=True):
            if with_size and container.disk_bytes is not None:
                self._disk[container.id] = container.disk_bytes
            if reading is None:
                continue
            # Sorted by creation: a newer container of the same index overwrites an older one
            # (the old one is draining or being removed).
            samples[(container.process_guid, container.index)] = self._sample(
                container, reading
            )
        seen = {c.id for c in containers}
        for gone in set(self._cpu) - seen:
            del self._cpu[gone]
        for gone in set(self._disk) - seen:
            del self._disk[gone]
        await self._store.publish(samples)
        return list(samples.values())

    async def _read(self, container: InstanceContainer) -> StatsReading | None:
        try:
            stats = await self._call(self._stats, container.id)
        except CellError as exc:
            log.warning("metrics-stats-failed", container_id=container.id[:12], error=str(exc))
            return None
        if stats is None:
            return None
        reading = stats_reading(stats)
        if reading.cpu is None:
            # A container that stops between the listing and the reading has no CPU figures;
            # so has every container of an engine that cannot read cgroups: say that once.
            if not self._said_empty:
                log.warning("metrics-stats-empty", container_id=container.id[:12])
                self._said_empty = True
            return None
        return reading

    def _sample(self, container: InstanceContainer, reading: StatsReading) -> InstanceMetrics:
        assert reading.cpu is not None
        previous = self._cpu.get(container.id)
        self._cpu[container.id] = reading.cpu
        return InstanceMetrics(
            process_guid=container.process_guid,
            index=container.index,
            instance_guid=container.instance_guid,
            cell_id=self._cell_id,
            cpu_percent=None if previous is None else cpu_percent(previous, reading.cpu),
            memory_bytes=reading.memory_bytes,
            memory_limit_bytes=reading.memory_limit_bytes,
            disk_bytes=self._disk.get(container.id),
            sampled_at=self._clock(),
        )

    async def close(self) -> None:
        """Delete this cell's samples (revoke the lease), then release the Docker client."""
        await self._store.release()
        await asyncio.to_thread(self._pool.shutdown, wait=True, cancel_futures=True)
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None
