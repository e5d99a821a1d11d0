"""What a container for one instance looks like, as plain data built from the desired state.

Pure: no Docker, no etcd. `docker_engine` turns a ContainerSpec into an engine request.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from typing import Any

from lattice.models import Assignment, RunInfo

LABEL_PROCESS_GUID = "lattice.process_guid"
LABEL_INDEX = "lattice.index"
LABEL_INSTANCE_GUID = "lattice.instance_guid"
LABEL_CELL_ID = "lattice.cell_id"
LABEL_CLUSTER_ID = "lattice.cluster_id"
LABEL_TASK_GUID = "lattice.task_guid"      # a task's container (cell/tasks.py), not an instance's
# A prewarmed network sandbox (cell/sandboxes.py); its value is the sandbox's port key.
LABEL_SANDBOX = "lattice.sandbox"
# On an instance's container: the sandbox whose network namespace it runs in.
LABEL_SANDBOX_ID = "lattice.sandbox_id"

# Diego hands a weight of 1-100 to Garden as a share of 1024 CPU shares (the cgroup default):
# weight 100 gets the default share, weight 50 half of it. Docker refuses shares below 2.
MAX_CPU_SHARES = 1024
MIN_CPU_SHARES = 2

_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]")


def cpu_shares(cpu_weight: int) -> int | None:
    """Docker CPU shares for a weight of 1-100; None (the engine's default) for 0 or less."""
    if cpu_weight <= 0:
        return None
    weight = min(cpu_weight, 100)
    return max(MIN_CPU_SHARES, MAX_CPU_SHARES * weight // 100)


def memory_limit_bytes(memory_mb: int) -> int | None:
    """A memory limit in bytes; 0 means no limit."""
    return memory_mb * 1024 * 1024 if memory_mb > 0 else None


def container_name_safe(text: str) -> str:
    """`text` usable in a container name: Docker allows only [a-zA-Z0-9_.-]."""
    return _NAME_UNSAFE.sub("_", text)


def container_name(cell_id: str, assignment: Assignment) -> str:
    """Unique per instance, readable in `docker ps`."""
    cell = container_name_safe(cell_id)
    return (
        f"lattice-{cell}-{assignment.process_guid}-{assignment.index}-"
        f"{assignment.instance_guid[:8]}"
    )


def published_ports(run: RunInfo) -> tuple[int, ...]:
    """The app's ports, plus the monitored port if it is not one of them: the health check can
    only reach a port that is published on the cell's address."""
    ports = list(dict.fromkeys(run.ports))
    if run.monitor.port is not None and run.monitor.port not in ports:
        ports.append(run.monitor.port)
    return tuple(ports)


def vcap_application(run: RunInfo, assignment: Assignment) -> str:
    port = run.ports[0] if run.ports else None
    return json.dumps(
        {
            "application_name": assignment.process_guid,
            "application_id": assignment.process_guid,
            "instance_id": assignment.instance_guid,
            "instance_index": assignment.index,
            "limits": {"mem": assignment.memory_mb, "disk": assignment.disk_mb},
            "host": "0.0.0.0",  # noqa: S104 - what the app binds to inside its own container
            "port": port,
        },
        separators=(",", ":"),
    )


def instance_env(run: RunInfo, assignment: Assignment, address: str) -> dict[str, str]:
    """The user's variables, then the platform's, which win: an app must not be able to fake
    its own index or guid.

    CF_INSTANCE_PORT is the container port, not the host port: Docker picks the host port at
    start, after the environment is fixed. The real host port is on the ActualLRP.
    """
    env = dict(run.env)
    platform = {
        "INSTANCE_INDEX": str(assignment.index),
        "INSTANCE_GUID": assignment.instance_guid,
        "CF_INSTANCE_INDEX": str(assignment.index),
        "CF_INSTANCE_GUID": assignment.instance_guid,
        "CF_INSTANCE_IP": address,
        "VCAP_APPLICATION": vcap_application(run, assignment),
    }
    if run.ports:
        port = str(run.ports[0])
        platform.update(
            {"PORT": port, "CF_INSTANCE_PORT": port, "CF_INSTANCE_ADDR": f"{address}:{port}"}
        )
    env.update(platform)
    return env


def instance_labels(cluster_id: str, cell_id: str, assignment: Assignment) -> dict[str, str]:
    return {
        LABEL_CLUSTER_ID: cluster_id,
        LABEL_PROCESS_GUID: assignment.process_guid,
        LABEL_INDEX: str(assignment.index),
        LABEL_INSTANCE_GUID: assignment.instance_guid,
        LABEL_CELL_ID: cell_id,
    }


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    image: str
    command: tuple[str, ...] | None      # None: the image's own CMD
    environment: dict[str, str]
    address: str                         # host address every port is published on
    ports: tuple[int, ...]               # container ports; Docker picks the host ports
    mem_limit: int | None
    cpu_shares: int | None
    user: str
    working_dir: str
    privileged: bool
    labels: dict[str, str] = field(default_factory=dict)
    # A prewarmed sandbox's container id: the container joins its network namespace, whose
    # ports are published already, instead of getting its own (cell/sandboxes.py).
    sandbox_id: str = ""
    sandbox_ports: dict[int, int] = field(default_factory=dict)   # the sandbox's host ports

    def in_sandbox(self, sandbox_id: str, host_ports: dict[int, int]) -> ContainerSpec:
        return replace(self, sandbox_id=sandbox_id, sandbox_ports=dict(host_ports),
                       labels={**self.labels, LABEL_SANDBOX_ID: sandbox_id})

    def create_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for docker-py's `containers.create`."""
        kwargs: dict[str, Any] = {
            "image": self.image,
            "name": self.name,
            "environment": self.environment,
            "labels": self.labels,
            "detach": True,
            # Docker's init (tini) as PID 1, as Garden runs its own init: the app then gets
            # SIGTERM's default action on `docker stop` instead of PID 1's immunity to it, so
            # it stops at once rather than after the 10 s kill timeout.
            "init": True,
        }
        if self.sandbox_id:
            kwargs["network_mode"] = f"container:{self.sandbox_id}"
        else:
            kwargs["ports"] = {f"{port}/tcp": (self.address, None) for port in self.ports}
        if self.command is not None:
            kwargs["command"] = list(self.command)
        if self.mem_limit is not None:
            kwargs["mem_limit"] = self.mem_limit
        if self.cpu_shares is not None:
            kwargs["cpu_shares"] = self.cpu_shares
        if self.user:
            kwargs["user"] = self.user
        if self.working_dir:
            kwargs["working_dir"] = self.working_dir
        if self.privileged:
            kwargs["privileged"] = True
        return kwargs


def build_container_spec(
    *, cluster_id: str, cell_id: str, address: str, run: RunInfo, assignment: Assignment
) -> ContainerSpec:
    # `docker run IMAGE CMD ARGS`: a command and its args replace the image's CMD together.
    command = run.command + run.args
    return ContainerSpec(
        name=container_name(cell_id, assignment),
        image=run.image,
        command=command or None,
        environment=instance_env(run, assignment, address),
        address=address,
        ports=published_ports(run),
        mem_limit=memory_limit_bytes(assignment.memory_mb),
        cpu_shares=cpu_shares(assignment.cpu_weight),
        user=run.user,
        working_dir=run.working_dir,
        privileged=run.privileged,
        labels=instance_labels(cluster_id, cell_id, assignment),
    )
