"""The cell's samples in a real etcd: leased, replaced, deleted only while still the cell's own."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lattice.cell.metrics_store import MetricsStore
from lattice.models.metrics import InstanceMetrics
from lattice.store import Etcd, keys
from tests.support_cell import wait_for

pytestmark = pytest.mark.integration


def sample(guid: str, index: int, **kw: Any) -> InstanceMetrics:
    fields: dict[str, Any] = {"process_guid": guid, "index": index, "instance_guid": f"g{index}",
                              "cell_id": "cell-a", "cpu_percent": 12.5, "memory_bytes": 1000,
                              "memory_limit_bytes": 2000, "disk_bytes": 30, "sampled_at": 1}
    fields.update(kw)
    return InstanceMetrics(**fields)


async def stored(etcd: Etcd) -> dict[str, InstanceMetrics]:
    kvs, _ = await etcd.get_prefix(keys.METRICS)
    return {kv.key: InstanceMetrics.from_dict(json.loads(kv.value)) for kv in kvs}


async def test_samples_are_put_replaced_and_the_gone_ones_deleted(etcd: Etcd) -> None:
    store = MetricsStore(etcd, ttl_s=5)
    await store.publish({("web", 0): sample("web", 0), ("web", 1): sample("web", 1)})
    assert set(await stored(etcd)) == {keys.metrics("web", 0), keys.metrics("web", 1)}

    await store.publish({("web", 0): sample("web", 0, cpu_percent=50.0)})
    found = await stored(etcd)
    assert set(found) == {keys.metrics("web", 0)}
    assert found[keys.metrics("web", 0)].cpu_percent == 50.0

    await store.release()
    assert await stored(etcd) == {}


async def test_a_sample_another_cell_wrote_since_is_not_deleted(etcd: Etcd) -> None:
    ours = MetricsStore(etcd, ttl_s=5)
    await ours.publish({("web", 0): sample("web", 0)})
    # The instance was re-placed on cell-b, which wrote its own sample under the same key.
    theirs = MetricsStore(etcd, ttl_s=5)
    await theirs.publish({("web", 0): sample("web", 0, cell_id="cell-b", instance_guid="new")})

    await ours.publish({})          # our container is gone
    found = await stored(etcd)
    assert found[keys.metrics("web", 0)].cell_id == "cell-b"
    await theirs.release()
    await ours.release()


async def test_samples_expire_with_the_lease_and_come_back_under_a_new_one(etcd: Etcd) -> None:
    store = MetricsStore(etcd, ttl_s=1)
    await store.publish({("web", 0): sample("web", 0)})

    async def gone() -> bool:
        return await stored(etcd) == {}

    # Not kept alive (the cell died, or stalled): etcd deletes the samples by itself.
    await wait_for(gone, "the lease to expire", within_s=10)
    await store.publish({("web", 0): sample("web", 0)})
    assert set(await stored(etcd)) == {keys.metrics("web", 0)}
    await store.release()


async def test_an_idle_cell_writes_nothing(etcd: Etcd) -> None:
    store = MetricsStore(etcd, ttl_s=5)
    before = (await etcd.get_prefix(keys.ROOT))[1]
    await store.publish({})
    await store.publish({})
    assert (await etcd.get_prefix(keys.ROOT))[1] == before    # no write at all
    await store.release()
