"""Container metrics: a real cell samples real busybox containers and writes the samples to etcd."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import docker
import pytest

from lattice.models.metrics import InstanceMetrics
from lattice.store import Etcd, keys
from tests.support_cell import CellUnderTest, claim, desire, run_info, unassign, wait_for
from tests.support_metrics import require_engine_stats

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
# 24 MiB in /dev/shm (tmpfs: charged to the container's memory, never reclaimable as cache),
# 3 MiB in the writable layer, then one core busy.
BURN = ("sh", "-c", "dd if=/dev/zero of=/dev/shm/fill bs=1M count=24 2>/dev/null; "
                    "dd if=/dev/zero of=/disk bs=1M count=3 2>/dev/null; while :; do :; done")
IDLE = ("sh", "-c", "exec sleep 3600")


@pytest.fixture(scope="module", autouse=True)
def engine_stats(docker_client: docker.DockerClient, demo_image: str) -> None:
    require_engine_stats(docker_client, demo_image)


@pytest.fixture
async def cell(etcd_endpoint: str, demo_image: str) -> AsyncIterator[CellUnderTest]:
    under_test = CellUnderTest(etcd_endpoint, metrics_interval_s=0.5, metrics_disk_interval_s=0.5)
    try:
        await under_test.start()
        yield under_test
    finally:
        await under_test.close()


async def sample_of(etcd: Etcd, guid: str, index: int) -> InstanceMetrics | None:
    kv = await etcd.get(keys.metrics(guid, index))
    return None if kv is None else InstanceMetrics.from_dict(json.loads(kv.value))


async def test_busy_and_idle_instances_are_sampled_with_plausible_figures(
    cell: CellUnderTest, etcd: Etcd, demo_image: str
) -> None:
    await desire(etcd, run_info("burn", demo_image, command=BURN, monitor=None), instances=1)
    await desire(etcd, run_info("idle", demo_image, command=IDLE, monitor=None), instances=1)
    burn = await claim(etcd, cell.cell_id, "burn", 0, memory_mb=64)
    idle = await claim(etcd, cell.cell_id, "idle", 0, memory_mb=32)

    async def burning() -> InstanceMetrics | None:
        sample = await sample_of(etcd, "burn", 0)
        ok = (sample is not None and sample.cpu_percent is not None
              and sample.cpu_percent > 20 and sample.memory_bytes > 16 * MiB
              and (sample.disk_bytes or 0) >= 3 * MiB)
        return sample if ok else None

    sample = await wait_for(burning, "burn/0's sample: busy CPU, 24 MiB, 3 MiB on disk")
    assert sample.instance_guid == burn.instance_guid
    assert sample.cell_id == cell.cell_id
    assert sample.memory_limit_bytes == 64 * MiB
    # One busy-looping process can use at most one core (100 %), two on this 2-core machine
    # at the very most; noise must not push it beyond.
    assert sample.cpu_percent is not None
    assert sample.cpu_percent < 210

    async def idling() -> InstanceMetrics | None:
        found = await sample_of(etcd, "idle", 0)
        return found if found is not None and found.cpu_percent is not None else None

    quiet = await wait_for(idling, "idle/0's sample with a CPU figure")
    assert quiet.instance_guid == idle.instance_guid
    assert quiet.cpu_percent is not None
    assert quiet.cpu_percent < 10
    assert 0 < quiet.memory_bytes < 8 * MiB
    assert quiet.memory_limit_bytes == 32 * MiB


async def test_a_removed_instance_loses_its_sample_and_a_stopped_cell_all_of_them(
    cell: CellUnderTest, etcd: Etcd, demo_image: str
) -> None:
    await desire(etcd, run_info("gone", demo_image, command=IDLE, monitor=None), instances=2)
    for index in (0, 1):
        await claim(etcd, cell.cell_id, "gone", index)
    for index in (0, 1):
        await wait_for(lambda i=index: sample_of(etcd, "gone", i), f"gone/{index}'s sample")

    await unassign(etcd, cell.cell_id, "gone", 1)

    async def sample_removed() -> bool:
        return await sample_of(etcd, "gone", 1) is None

    await wait_for(sample_removed, "gone/1's sample to be deleted")
    assert await sample_of(etcd, "gone", 0) is not None

    # A clean stop revokes the cell's metrics lease: the samples go with it, at once.
    await cell.stop()
    kvs, _ = await etcd.get_prefix(keys.METRICS)
    assert kvs == []
