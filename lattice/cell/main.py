"""`lattice cell`: run the instances assigned to this cell until cancelled.

Start-up: capacity, then assignments and Docker events, adoption of the containers an earlier
run left, then presence (the auctioneer places work only on present cells).
Shutdown, in order: stop taking work, end the runners (containers keep running, so a restarted
cell adopts them), flush logs, release the presence lease, close the clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog

from lattice.auth import Credentials
from lattice.cell.app_logs import LogSink
from lattice.cell.config import CellConfig
from lattice.cell.docker_engine import DockerEngine, remove_cell_containers
from lattice.cell.docker_streams import DockerStreams
from lattice.cell.healthcheck import HealthSettings
from lattice.cell.metrics import MetricsSampler
from lattice.cell.presence import PRESENCE_TTL_S, presence_records, resolve_capacity
from lattice.cell.rep import Rep
from lattice.cell.reports import ActualReports
from lattice.cell.runner import RunnerDeps
from lattice.cell.sandboxes import SandboxPool
from lattice.cell.tasks import TaskDeps, TaskRep
from lattice.store import Etcd, LeasedRecords, ensure_cluster_id
from logagg.publisher import LogPublisher

log = structlog.get_logger("lattice.cell")

LOG_FLUSH_S = 2.0


async def serve(
    config: CellConfig,
    *,
    ready: asyncio.Event | None = None,
    log_sink: LogSink | None = None,
    health: HealthSettings | None = None,
    credentials: Credentials | None = None,
) -> None:
    """Run the cell until cancelled. `log_sink` None: publish to the log aggregator."""
    structlog.contextvars.bind_contextvars(cell_id=config.cell_id)
    etcd = Etcd(config.etcd_endpoints)
    try:
        cluster_id = await ensure_cluster_id(etcd)
    except BaseException:
        await etcd.close()
        raise
    engine = DockerEngine()
    streams = DockerStreams()
    publisher: LogPublisher | None = None
    sink: LogSink
    if log_sink is None:
        publisher = sink = LogPublisher(etcd, credentials=credentials)
    else:
        sink = log_sink
    sandboxes = SandboxPool(engine=engine, cluster_id=cluster_id, cell_id=config.cell_id,
                            address=config.address, size=config.warm_sandboxes)
    rep = Rep(
        deps=RunnerDeps(
            cluster_id=cluster_id,
            cell_id=config.cell_id,
            address=config.address,
            engine=engine,
            streams=streams,
            reports=ActualReports(etcd, config.cell_id),
            sink=sink,
            health=health or HealthSettings(),
            sandboxes=sandboxes,
        ),
        etcd=etcd,
        sync_interval_s=config.sync_interval_s,
    )
    task_rep = TaskRep(
        TaskDeps(cluster_id=cluster_id, cell_id=config.cell_id, address=config.address,
                 engine=engine, streams=streams, sink=sink, etcd=etcd, clock=time.time_ns,
                 sandboxes=sandboxes),
        sync_interval_s=config.sync_interval_s,
    )
    metrics = MetricsSampler(etcd=etcd, cluster_id=cluster_id, cell_id=config.cell_id,
                             interval_s=config.metrics_interval_s,
                             disk_interval_s=config.metrics_disk_interval_s)
    background: list[asyncio.Task[None]] = []
    presence: LeasedRecords | None = None
    try:
        if publisher is not None:
            background.append(asyncio.create_task(publisher.run(), name="cell-log-publisher"))
        background.append(asyncio.create_task(metrics.run(), name="cell-metrics"))
        capacity = await resolve_capacity(config, engine)
        await rep.start()
        await sandboxes.start()
        await task_rep.start()
        presence = LeasedRecords(etcd, presence_records(config, capacity), ttl_s=PRESENCE_TTL_S)
        background.append(asyncio.create_task(presence.run(), name="cell-presence"))
        await presence.registered.wait()
        log.info("cell-started", address=config.address, memory_mb=capacity.memory_mb,
                 disk_mb=capacity.disk_mb, containers=capacity.containers)
        if ready is not None:
            ready.set()
        await asyncio.Event().wait()
    finally:
        await task_rep.stop()
        await rep.stop()
        await sandboxes.close()
        if publisher is not None:
            await publisher.flush(LOG_FLUSH_S)
        for task in background:
            task.cancel()
        for task in background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await metrics.close()
        if presence is not None:
            await presence.release()
        await streams.close()
        await engine.close()
        await etcd.close()
        log.info("cell-stopped")


__all__ = ["remove_cell_containers", "serve"]
