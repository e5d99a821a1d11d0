"""The cell's configuration, loaded once at its entry point and passed in."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class CellConfig:
    cell_id: str = "cell-0"
    address: str = "127.0.0.1"          # where container ports are published (loopback here)
    etcd_endpoints: str
    memory_mb: int | None = None        # None: the host's total memory
    disk_mb: int | None = None          # None: the free disk under Docker's root directory
    containers: int = 256
    warm_sandboxes: int = 2             # prewarmed networks per port set (cell/sandboxes.py)
    sync_interval_s: float = 5.0
    metrics_interval_s: float = 5.0        # CPU and memory of each container (cell/metrics.py)
    metrics_disk_interval_s: float = 30.0  # its writable layer's size: costly, so less often

    def __post_init__(self) -> None:
        problems = []
        if not self.cell_id or "/" in self.cell_id:
            problems.append(f"cell_id {self.cell_id!r} must be non-empty and contain no '/'")
        if not self.address:
            problems.append("address must not be empty (the address container ports are "
                            "published on, e.g. 127.0.0.1)")
        if not self.etcd_endpoints.strip():
            problems.append("etcd_endpoints must name at least one etcd endpoint")
        if self.memory_mb is not None and self.memory_mb < 0:
            problems.append(f"memory_mb must be >= 0, got {self.memory_mb}")
        if self.disk_mb is not None and self.disk_mb < 0:
            problems.append(f"disk_mb must be >= 0, got {self.disk_mb}")
        if self.warm_sandboxes < 0:
            problems.append(f"warm_sandboxes must be >= 0, got {self.warm_sandboxes}")
        if self.containers < 1:
            problems.append(f"containers must be >= 1, got {self.containers}")
        if self.sync_interval_s <= 0:
            problems.append(f"sync_interval_s must be > 0, got {self.sync_interval_s}")
        if self.metrics_interval_s <= 0:
            problems.append(f"metrics_interval_s must be > 0, got {self.metrics_interval_s}")
        if self.metrics_disk_interval_s <= 0:
            problems.append(
                f"metrics_disk_interval_s must be > 0, got {self.metrics_disk_interval_s}"
            )
        if problems:
            raise ValueError("invalid cell configuration: " + "; ".join(problems))
