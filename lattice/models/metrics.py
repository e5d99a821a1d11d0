"""InstanceMetrics: one instance's last container sample (CPU, memory, disk), as the cell wrote it.

Loggregator's ContainerMetric, kept in etcd under the cell's metrics lease
(`/lattice/v1/metrics/<process_guid>/<index>`), so a dead cell's samples vanish with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lattice.models.actual import ActualLRP, ActualState


@dataclass(frozen=True, kw_only=True)
class InstanceMetrics:
    process_guid: str
    index: int
    instance_guid: str          # whose sample: an index re-created later must not inherit it
    cell_id: str
    cpu_percent: float | None   # None until two readings exist; 100.0 = one core busy
    memory_bytes: int           # usage minus inactive page cache, as `docker stats` shows it
    memory_limit_bytes: int     # the container's limit (the host's memory when it has none)
    disk_bytes: int | None      # the writable layer's size; None until first measured
    sampled_at: int             # ns since the epoch

    def to_dict(self) -> dict[str, Any]:
        return {
            "process_guid": self.process_guid,
            "index": self.index,
            "instance_guid": self.instance_guid,
            "cell_id": self.cell_id,
            "cpu_percent": self.cpu_percent,
            "memory_bytes": self.memory_bytes,
            "memory_limit_bytes": self.memory_limit_bytes,
            "disk_bytes": self.disk_bytes,
            "sampled_at": self.sampled_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InstanceMetrics:
        cpu = data.get("cpu_percent")
        disk = data.get("disk_bytes")
        return cls(
            process_guid=str(data["process_guid"]),
            index=int(data["index"]),
            instance_guid=str(data["instance_guid"]),
            cell_id=str(data.get("cell_id", "")),
            cpu_percent=None if cpu is None else float(cpu),
            memory_bytes=int(data["memory_bytes"]),
            memory_limit_bytes=int(data["memory_limit_bytes"]),
            disk_bytes=None if disk is None else int(disk),
            sampled_at=int(data["sampled_at"]),
        )


def current_metrics(
    actual: ActualLRP, samples: Mapping[tuple[str, int], InstanceMetrics]
) -> InstanceMetrics | None:
    """The sample of this very instance, if it has a container now.

    A sample of an earlier instance at the same index (crashed, re-placed, rolled) is not
    its: the cell deletes such samples only on its next round.
    """
    sample = samples.get((actual.process_guid, actual.index))
    if sample is None or sample.instance_guid != actual.instance_guid:
        return None
    if actual.state not in (ActualState.CLAIMED, ActualState.RUNNING):
        return None
    return sample
