"""The arithmetic of container metrics: CPU % from two readings, memory without cache, sizes."""

from __future__ import annotations

from typing import Any

import pytest

from lattice.cell.container_stats import (
    CpuReading,
    cpu_percent,
    cpu_reading,
    memory_usage,
    stats_reading,
)
from lattice.cell.metrics import instance_containers
from lattice.cell.metrics_store import lease_ttl_s
from lattice.cli.messages import metrics_cells, size
from lattice.models import ActualLRP, ActualState
from lattice.models.metrics import InstanceMetrics, current_metrics

S = 1_000_000_000     # ns


def stats(container_ns: int, system_ns: int, online: int = 2, **memory: Any) -> dict[str, Any]:
    """The engine's stats JSON, trimmed to what the cell reads."""
    return {
        "cpu_stats": {"cpu_usage": {"total_usage": container_ns}, "system_cpu_usage": system_ns,
                      "online_cpus": online},
        "memory_stats": memory,
    }


@pytest.mark.parametrize(
    ("container_delta", "system_delta", "online", "expected"),
    [
        (1 * S, 2 * S, 2, 100.0),     # 2 cores for 1 s = 2 s of host time; 1 s used: one core
        (2 * S, 2 * S, 2, 200.0),     # both cores busy
        (S // 4, 2 * S, 2, 25.0),
        (0, 2 * S, 2, 0.0),           # idle
        (1 * S, 1 * S, 1, 100.0),     # a one-core host
    ],
)
def test_cpu_percent_is_docker_stats_arithmetic(
    container_delta: int, system_delta: int, online: int, expected: float
) -> None:
    previous = CpuReading(container_ns=10 * S, system_ns=1000 * S, online_cpus=online)
    current = CpuReading(10 * S + container_delta, 1000 * S + system_delta, online)
    assert cpu_percent(previous, current) == pytest.approx(expected)


def test_cpu_percent_from_the_engines_json() -> None:
    first = cpu_reading(stats(5 * S, 100 * S))
    second = cpu_reading(stats(5 * S + S // 2, 102 * S))
    assert first is not None
    assert second is not None
    assert cpu_percent(first, second) == pytest.approx(50.0)


@pytest.mark.parametrize(
    ("previous", "current"),
    [
        (CpuReading(5 * S, 100 * S, 2), CpuReading(6 * S, 100 * S, 2)),   # no host time passed
        (CpuReading(5 * S, 100 * S, 2), CpuReading(1 * S, 102 * S, 2)),   # counter went back
    ],
)
def test_cpu_percent_of_readings_that_cannot_be_compared_is_unknown(
    previous: CpuReading, current: CpuReading
) -> None:
    assert cpu_percent(previous, current) is None


def test_cpu_count_falls_back_to_the_per_cpu_figures() -> None:
    data = stats(S, 10 * S, online=0)
    data["cpu_stats"]["cpu_usage"]["percpu_usage"] = [1, 2, 3, 4]
    reading = cpu_reading(data)
    assert reading is not None
    assert reading.online_cpus == 4


def test_a_stopping_container_has_no_cpu_reading() -> None:
    # What a one-shot read of a container that just stopped looks like.
    assert cpu_reading({"cpu_stats": {"cpu_usage": {"total_usage": 0}},
                        "memory_stats": {}}) is None


@pytest.mark.parametrize(
    ("memory", "expected"),
    [
        ({"usage": 100, "stats": {"total_inactive_file": 30, "inactive_file": 10}}, 70),  # v1
        ({"usage": 100, "stats": {"inactive_file": 40}}, 60),                          # v2
        ({"usage": 100, "stats": {"total_inactive_file": 100, "inactive_file": 5}}, 95),
        ({"usage": 100, "stats": {}}, 100),
        ({}, 0),
    ],
)
def test_memory_is_usage_minus_inactive_page_cache(memory: dict[str, Any], expected: int) -> None:
    assert memory_usage(memory) == expected


def test_stats_reading_carries_the_limit() -> None:
    reading = stats_reading(stats(S, 10 * S, usage=5000, limit=64 * 1024 * 1024, stats={}))
    assert (reading.memory_bytes, reading.memory_limit_bytes) == (5000, 64 * 1024 * 1024)


def test_instance_containers_from_the_listing() -> None:
    labels = {"lattice.process_guid": "web", "lattice.index": "1",
              "lattice.instance_guid": "g1"}
    items = [
        {"Id": "a", "Labels": labels, "Created": 3, "SizeRootFs": 9},          # SizeRw 0: absent
        {"Id": "b", "Labels": {**labels, "lattice.index": "2"}, "Created": 4,
         "SizeRw": 4096, "SizeRootFs": 9},
        {"Id": "c", "Labels": {**labels, "lattice.task_guid": "t"}},            # a task's
        {"Id": "d", "Labels": {"lattice.cell_id": "cell-0"}},                   # nobody's
        {"Id": "e", "Labels": {**labels, "lattice.index": "x"}},
    ]
    found = instance_containers(items)
    assert [(c.id, c.index, c.disk_bytes) for c in found] == [("a", 1, 0), ("b", 2, 4096)]
    assert instance_containers([{"Id": "a", "Labels": labels}])[0].disk_bytes is None


def test_the_lease_outlives_a_late_round() -> None:
    assert lease_ttl_s(5.0) == 15
    assert lease_ttl_s(0.5) == 5


def sample(instance_guid: str = "g0", **kw: Any) -> InstanceMetrics:
    fields: dict[str, Any] = {"process_guid": "web", "index": 0, "instance_guid": instance_guid,
                              "cell_id": "cell-0", "cpu_percent": 1.5, "memory_bytes": 10,
                              "memory_limit_bytes": 20, "disk_bytes": None, "sampled_at": 3}
    fields.update(kw)
    return InstanceMetrics(**fields)


def test_metrics_round_trip_through_json() -> None:
    original = sample(cpu_percent=None, disk_bytes=7)
    assert InstanceMetrics.from_dict(original.to_dict()) == original


@pytest.mark.parametrize(
    ("state", "sample_guid", "shown"),
    [
        (ActualState.RUNNING, "g0", True),
        (ActualState.CLAIMED, "g0", True),
        (ActualState.RUNNING, "old", False),   # an earlier instance at the same index
        (ActualState.CRASHED, "g0", False),    # its container is gone; the sample is stale
    ],
)
def test_an_instance_shows_only_its_own_live_sample(
    state: ActualState, sample_guid: str, shown: bool
) -> None:
    actual = ActualLRP("web", 0, "g0", state, since=1)
    samples = {("web", 0): sample(sample_guid)}
    assert (current_metrics(actual, samples) is not None) is shown
    assert current_metrics(ActualLRP("web", 1, "g1", state, since=1), samples) is None


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0B"), (512, "512B"), (1536, "1.5K"), (25_296_896, "24.1M"), (128 * 1024**2, "128M"),
     (3 * 1024**3 // 2, "1.5G"), (4096 * 1024**3, "4096G")],
)
def test_sizes(n: int, text: str) -> None:
    assert size(n) == text


def test_status_cells_before_and_after_sampling() -> None:
    assert metrics_cells(None) == ["-", "-", "-"]
    assert metrics_cells(sample(cpu_percent=None)) == ["-", "10B/20B", "-"]
    assert metrics_cells(sample(cpu_percent=99.46, disk_bytes=2048)) == ["99.5%", "10B/20B", "2K"]
