"""The cell's presence record: what it offers the auctioneer, kept alive under an etcd lease."""

from __future__ import annotations

import json
import os
import shutil

import structlog

from lattice.cell.config import CellConfig
from lattice.cell.docker_engine import DockerEngine
from lattice.models import Capacity, CellPresence
from lattice.store import keys

log = structlog.get_logger("lattice.cell.presence")

PRESENCE_TTL_S = 5
MB = 1024 * 1024


def host_memory_mb() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // MB


def docker_disk_mb(docker_root: str) -> int:
    """Free disk under the engine's root directory."""
    if not os.path.isdir(docker_root):
        # The engine runs elsewhere (another mount namespace or host): its root is not
        # visible here, and this host's root filesystem is the best figure at hand.
        log.warning("docker-root-not-visible", docker_root=docker_root)
        docker_root = "/"
    return shutil.disk_usage(docker_root).free // MB


async def resolve_capacity(config: CellConfig, engine: DockerEngine) -> Capacity:
    """The configured capacity, with the host's figures filled in where none was given."""
    memory = config.memory_mb if config.memory_mb is not None else host_memory_mb()
    disk = config.disk_mb
    if disk is None:
        disk = docker_disk_mb(await engine.root_dir())
    return Capacity(memory_mb=memory, disk_mb=disk, containers=config.containers)


def presence_records(config: CellConfig, capacity: Capacity) -> dict[str, bytes]:
    presence = CellPresence(cell_id=config.cell_id, address=config.address, capacity=capacity)
    return {keys.cell(config.cell_id): json.dumps(presence.to_dict()).encode()}
