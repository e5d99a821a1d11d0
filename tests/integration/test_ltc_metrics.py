"""Container metrics end to end: a real cell samples busybox containers, the brain's API joins the
samples to the instances, `ltc status` shows them; a removed instance's and a dead cell's go."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from click.testing import CliRunner, Result

from lattice.cli.ltc import cli
from lattice.store import Etcd, ensure_cluster_id, keys
from tests.support_ltc import Brain, http_get, running_brain, start_cell, wait_for
from tests.support_metrics import require_engine_stats

pytestmark = pytest.mark.integration

DOMAIN = "metrics.localhost"
MiB = 1024 * 1024
BURN = ("sh", "-c", "dd if=/dev/zero of=/dev/shm/fill bs=1M count=24 2>/dev/null; "
                    "dd if=/dev/zero of=/disk bs=1M count=3 2>/dev/null; while :; do :; done")
IDLE = ("sh", "-c", "exec sleep 3600")


@pytest.fixture(scope="module", autouse=True)
def engine_stats(docker_client: docker.DockerClient, demo_image: str) -> None:
    require_engine_stats(docker_client, demo_image)


@pytest.fixture(scope="module")
def brain(
    module_etcd: str, tmp_path_factory: pytest.TempPathFactory, demo_image: str
) -> Iterator[Brain]:
    with running_brain(module_etcd, DOMAIN, tmp_path_factory.mktemp("brain")) as the_brain:
        yield the_brain


@pytest.fixture(scope="module")
def cell(module_etcd: str, brain: Brain, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[subprocess.Popen[bytes]]:
    """A cell process sampling every 0.5 s (disk too); stopped and its containers removed."""
    from lattice.cell import remove_cell_containers

    cell_id = f"metrics-{uuid.uuid4().hex[:8]}"
    log_path: Path = tmp_path_factory.mktemp("cell") / "cell.log"
    process = start_cell(module_etcd, cell_id, log_path, metrics_interval_s=0.5,
                         metrics_disk_interval_s=0.5)
    try:
        def present() -> bool:
            if process.poll() is not None:
                raise AssertionError(log_path.read_text(errors="replace"))
            answer = http_get(brain.port, "/v1/cells")
            return answer is not None and cell_id in answer[1].decode()

        wait_for(present, 30, f"cell {cell_id} to be present")
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)
        remove_cell_containers(asyncio.run(cluster_id(module_etcd)), cell_id)


async def cluster_id(endpoint: str) -> str:
    etcd = Etcd(endpoint)
    try:
        return await ensure_cluster_id(etcd)
    finally:
        await etcd.close()


def metric_keys(endpoint: str, app: str) -> list[str]:
    async def read() -> list[str]:
        etcd = Etcd(endpoint)
        try:
            kvs, _ = await etcd.get_prefix(keys.metrics_prefix(app))
        finally:
            await etcd.close()
        return [kv.key for kv in kvs]

    return asyncio.run(read())


def run(brain: Brain, *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"LATTICE_TARGET": brain.target,
                                                    "LTC_TIMEOUT": None})


def instances(brain: Brain, app: str) -> list[dict[str, Any]]:
    result = run(brain, "status", app, "--json")
    assert result.exit_code == 0, result.output
    found: list[dict[str, Any]] = json.loads(result.stdout)["instances"]
    return found


def create(brain: Brain, app: str, demo_image: str, command: tuple[str, ...]) -> None:
    result = run(brain, "create", app, demo_image, "-m", "64", "--no-monitor", "--no-routes",
                 "-t", "60s", "--", *command)
    assert result.exit_code == 0, result.output


def busy(brain: Brain, app: str) -> dict[str, Any] | None:
    metrics = instances(brain, app)[0]["metrics"]
    ok = (metrics is not None and metrics["cpu_percent"] is not None
          and metrics["cpu_percent"] > 20 and metrics["memory_bytes"] > 16 * MiB
          and (metrics["disk_bytes"] or 0) >= 3 * MiB)
    return metrics if ok else None


def test_status_shows_cpu_memory_and_disk_and_a_removed_instance_loses_them(
    brain: Brain, cell: subprocess.Popen[bytes], demo_image: str, module_etcd: str
) -> None:
    create(brain, "burn", demo_image, BURN)
    metrics = wait_for(lambda: busy(brain, "burn"), 30,
                       "burn/0 sampled busy with 24 MiB in memory and 3 MiB on disk")
    assert set(metrics) == {"cpu_percent", "memory_bytes", "memory_limit_bytes", "disk_bytes",
                            "sampled_at"}
    assert metrics["cpu_percent"] < 210      # one busy loop; two cores at the very most
    assert metrics["memory_limit_bytes"] == 64 * MiB
    assert abs(metrics["sampled_at"] - time.time_ns()) < 60 * 10**9

    text = run(brain, "status", "burn").stdout
    header = next(line for line in text.splitlines() if line.startswith("INDEX"))
    assert header.split()[-3:] == ["CPU", "MEMORY", "DISK"]
    row = next(line.split() for line in text.splitlines() if line.startswith("0 "))
    cpu, memory, disk = row[-3:]
    assert cpu.endswith("%")
    assert float(cpu[:-1]) > 20
    assert memory.endswith("M/64M")
    assert float(memory.split("M/")[0]) > 16
    assert disk.endswith("M")

    # A second instance is sampled too; scaled away, its sample goes from etcd and the API.
    assert run(brain, "scale", "burn", "2", "-t", "60s").exit_code == 0
    wait_for(lambda: [i for i in instances(brain, "burn") if i["metrics"]][1:], 30,
             "burn/1 to be sampled")
    assert run(brain, "scale", "burn", "1", "-t", "60s").exit_code == 0
    wait_for(lambda: metric_keys(module_etcd, "burn") == [keys.metrics("burn", 0)], 30,
             "burn/1's sample to be deleted")
    assert [i["index"] for i in instances(brain, "burn")] == [0]
    assert run(brain, "rm", "burn").exit_code == 0
    wait_for(lambda: metric_keys(module_etcd, "burn") == [], 30, "burn/0's sample to go")


def test_a_dead_cells_samples_vanish_with_its_lease(
    brain: Brain, cell: subprocess.Popen[bytes], demo_image: str, module_etcd: str
) -> None:
    create(brain, "orphan", demo_image, IDLE)
    wait_for(lambda: instances(brain, "orphan")[0]["metrics"], 30, "orphan/0 to be sampled")
    cell.kill()          # no clean stop: nothing revokes the lease, it must expire
    cell.wait(timeout=10)
    killed = time.monotonic()
    wait_for(lambda: metric_keys(module_etcd, "orphan") == [], 30, "the lease to expire")
    # The TTL is 5 s (three 0.5 s intervals, at least 5 s); etcd expires leases late by up to
    # a second or so.
    assert time.monotonic() - killed < 10
    assert instances(brain, "orphan")[0]["metrics"] is None
