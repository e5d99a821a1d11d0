"""The arithmetic of `docker stats`, on the engine's stats JSON: pure, no I/O.

The cell asks for one-shot readings (`stats?stream=false&one-shot=true`: one cgroup read, a
few ms, where the default waits two 1 s collection cycles) and computes CPU % itself from the
previous reading of the same container, so the figure is the average over the sampling
interval rather than over the last second.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CpuReading:
    container_ns: int       # cpu_stats.cpu_usage.total_usage: the container's CPU time
    system_ns: int          # cpu_stats.system_cpu_usage: the host's CPU time, all cores
    online_cpus: int


@dataclass(frozen=True)
class StatsReading:
    cpu: CpuReading | None          # None: the engine gave no CPU figures (container stopping)
    memory_bytes: int
    memory_limit_bytes: int


def cpu_reading(stats: dict[str, Any]) -> CpuReading | None:
    cpu = stats.get("cpu_stats") or {}
    usage = cpu.get("cpu_usage") or {}
    total, system = usage.get("total_usage"), cpu.get("system_cpu_usage")
    if total is None or system is None:
        return None
    online = int(cpu.get("online_cpus") or 0)
    if online == 0:
        # Older engines do not say; `docker stats` then counts the per-CPU figures.
        online = len(usage.get("percpu_usage") or ()) or 1
    return CpuReading(int(total), int(system), online)


def cpu_percent(previous: CpuReading, current: CpuReading) -> float | None:
    """`docker stats`' CPU %: the container's share of the host's CPU time between two
    readings, times the number of cores, so 100.0 is one core busy and 200.0 two.

    None when the readings cannot be compared (the counters went backwards: another container
    under the same id, or no host time passed); 0.0 for an idle container.
    """
    container_delta = current.container_ns - previous.container_ns
    system_delta = current.system_ns - previous.system_ns
    if system_delta <= 0 or container_delta < 0:
        return None
    return container_delta / system_delta * current.online_cpus * 100.0


def memory_usage(memory_stats: dict[str, Any]) -> int:
    """Usage without the reclaimable page cache, as the docker CLI (20.10) computes it:
    usage minus `total_inactive_file` (cgroup v1) or `inactive_file` (v2)."""
    usage = int(memory_stats.get("usage") or 0)
    stats = memory_stats.get("stats") or {}
    v1 = stats.get("total_inactive_file")
    if v1 is not None and int(v1) < usage:
        return usage - int(v1)
    v2 = int(stats.get("inactive_file") or 0)
    return usage - v2 if v2 < usage else usage


def stats_reading(stats: dict[str, Any]) -> StatsReading:
    memory = stats.get("memory_stats") or {}
    return StatsReading(
        cpu=cpu_reading(stats),
        memory_bytes=memory_usage(memory),
        memory_limit_bytes=int(memory.get("limit") or 0),
    )
