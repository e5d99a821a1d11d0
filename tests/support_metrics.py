"""Container metrics tests need an engine that reports stats: check it once, say why if not."""

from __future__ import annotations

import time
from typing import Any

import docker
import pytest

DIAGNOSIS = (
    "the Docker engine reports no container stats (`docker stats` shows 0B / 0B): dockerd "
    "cannot load the containers' cgroups. Its log (/var/log/dockerd.log) says why, e.g. "
    "'cgroups: cannot find cgroup mount destination' when a cgroup v1 hierarchy listed in "
    "/proc/cgroups is mounted in no namespace dockerd sees (a systemd container with the host's "
    "cgroup namespace leaves such hierarchies behind). Container metrics cannot work until "
    "the engine's own stats do."
)


def require_engine_stats(client: docker.DockerClient, image: str, within_s: float = 10.0) -> None:
    """Fail (not skip) with the diagnosis unless a fresh container gets memory figures."""
    container = client.containers.run(image, ["sleep", "60"], detach=True,
                                      labels={"lattice.test": "engine-stats-probe"})
    try:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            stats: dict[str, Any] = client.api.stats(container.id, stream=False, one_shot=True)
            if stats.get("memory_stats"):
                return
            time.sleep(0.2)
    finally:
        container.remove(force=True)
    pytest.fail(DIAGNOSIS)
