"""Apps of more instances than etcd takes operations in one transaction (128): created, scaled
and removed through the brain's API, against a real etcd and a real brain (no cell, so the
instances stay UNCLAIMED with a placement error). Before the writes were split (store/batches.py)
a create of 127 instances or more answered 500."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import aiohttp
import pytest

from lattice.brain.converger import Seen
from lattice.brain.db import LRPDB
from lattice.models import ActualState, parse_desired_lrp
from lattice.models.desired import MAX_INSTANCES
from lattice.store import MAX_TXN_OPS, DeletePrefix, Etcd, keys
from lattice.store.etcd import Compare, Operation
from tests.support_brain import brains_in_process, call
from tests.support_cell import wait_for

pytestmark = pytest.mark.integration

DOMAIN = "many.localhost"
BIG = 300           # > MAX_TXN_OPS: one transaction could not hold it


@pytest.fixture
async def store(etcd_endpoint: str) -> AsyncIterator[Etcd]:
    client = Etcd(etcd_endpoint)
    yield client
    await client.close()


@pytest.fixture
async def api(etcd_endpoint: str, demo_image: str) -> AsyncIterator[str]:
    """A brain (leading: it is alone) on a free port; yields its base URL."""
    async with brains_in_process(etcd_endpoint, DOMAIN) as (url,):
        yield url


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def actual_records(store: Etcd, guid: str) -> list[dict[str, Any]]:
    kvs, _ = await store.get_prefix(keys.actual_prefix(guid))
    return [json.loads(kv.value) for kv in kvs]


async def test_an_app_past_one_transaction_is_created_scaled_and_removed(
    api: str, store: Etcd, http: aiohttp.ClientSession, demo_image: str
) -> None:
    assert BIG > MAX_TXN_OPS
    status, created = await call(http, "POST", f"{api}/v1/desired_lrps",
                                 {"process_guid": "many", "image": demo_image, "instances": BIG})
    assert status == 201, created
    assert created["instances"] == BIG
    # Every instance is written before the answer, each once, UNCLAIMED with its own guid.
    records = await actual_records(store, "many")
    assert sorted(r["index"] for r in records) == list(range(BIG))
    assert len({r["instance_guid"] for r in records}) == BIG
    assert {r["state"] for r in records} <= {ActualState.UNCLAIMED.value}

    # No cell: the leader's auction gives each its placement error (every one is auctioned).
    async def all_unplaceable() -> bool:
        _, actuals = await call(http, "GET", f"{api}/v1/actual_lrps/many")
        return len(actuals) == BIG and all(a["placement_error"] for a in actuals)

    await wait_for(all_unplaceable, f"{BIG} placement errors")

    for count in (500, 10):
        status, _ = await call(http, "PUT", f"{api}/v1/desired_lrps/many", {"instances": count})
        assert status == 204

        async def scaled(expected: int = count) -> bool:
            return sorted(r["index"] for r in await actual_records(store, "many")) == list(
                range(expected))

        await wait_for(scaled, f"the converger to bring 'many' to {count} instances")

    status, _ = await call(http, "DELETE", f"{api}/v1/desired_lrps/many")
    assert status == 204
    for prefix in (keys.actual_prefix("many"), keys.scheduling("many"), keys.run("many")):
        assert (await store.get_prefix(prefix))[0] == [], prefix


async def test_the_largest_app_allowed_is_created_whole_and_one_more_is_a_400(
    api: str, store: Etcd, http: aiohttp.ClientSession, demo_image: str
) -> None:
    body = {"process_guid": "largest", "image": demo_image, "instances": MAX_INSTANCES}
    status, _ = await call(http, "POST", f"{api}/v1/desired_lrps", body)
    assert status == 201
    assert len(await actual_records(store, "largest")) == MAX_INSTANCES

    for instances in (MAX_INSTANCES + 1, 10**9):
        status, error = await call(http, "POST", f"{api}/v1/desired_lrps",
                                   {**body, "process_guid": "absurd", "instances": instances})
        assert status == 400, error
        assert "instances" in json.dumps(error)
        assert str(MAX_INSTANCES) in json.dumps(error)
        status, error = await call(http, "PUT", f"{api}/v1/desired_lrps/largest",
                                   {"instances": instances})
        assert status == 400, error
    assert (await store.get_prefix(keys.actual_prefix("absurd")))[0] == []
    assert (await store.get(keys.scheduling("absurd"))) is None

    status, _ = await call(http, "DELETE", f"{api}/v1/desired_lrps/largest")
    assert status == 204
    assert (await store.get_prefix(keys.actual_prefix("largest")))[0] == []


async def test_removal_releases_every_cells_assignment(store: Etcd, demo_image: str) -> None:
    """Placed instances: the removal deletes each cell's assignment too, past one transaction.
    (The claims are the brain's own, through LRPDB.claim; no brain runs, so nothing else
    writes meanwhile.)"""
    db = LRPDB(store)
    lrp = parse_desired_lrp({"process_guid": "placed", "image": demo_image, "instances": BIG},
                            epoch="e")
    assert await db.create_desired(lrp, time.time_ns())
    for actual, revision in await db.list_actual("placed"):
        cell = f"cell-{actual.index % 2}"
        assert await db.claim(Seen(actual, revision), cell, lrp.scheduling, time.time_ns())
    assignments, _ = await store.get_prefix(keys.ASSIGNMENTS)
    assert len(assignments) == BIG

    await db.delete_desired("placed")
    assert (await store.get_prefix(keys.ASSIGNMENTS))[0] == []
    assert (await store.get_prefix(keys.actual_prefix("placed")))[0] == []
    assert await db.get_desired("placed") is None


class RecreatesDuringRemoval(Etcd):
    """A real etcd client that, right after the removal's first transaction (the one deleting
    the instances by prefix), runs `between`: what another client could do at that moment."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(endpoint)
        self.between: Callable[[], Awaitable[None]] | None = None

    async def txn(self, compare: Sequence[Compare], success: Sequence[Operation]) -> bool:
        succeeded = await super().txn(compare, success)
        between, self.between = self.between, None
        if between is not None and any(isinstance(op, DeletePrefix) for op in success):
            await between()
        else:
            self.between = between
        return succeeded


async def test_a_removal_leaves_the_assignments_of_an_app_created_again_meanwhile(
    etcd_endpoint: str, store: Etcd, demo_image: str
) -> None:
    """The app is created again under its name, and placed on the same cells, between the
    removal's first transaction and its release of the old assignments: those keys now hold
    the new app's assignments, and the removal must leave them alone."""
    spec = {"process_guid": "again", "image": demo_image, "instances": BIG}
    racing = RecreatesDuringRemoval(etcd_endpoint)
    try:
        remover = LRPDB(racing)
        other = LRPDB(store)

        async def place_all(db: LRPDB, epoch: str) -> None:
            lrp = parse_desired_lrp(spec, epoch=epoch)
            assert await db.create_desired(lrp, time.time_ns())
            for actual, revision in await db.list_actual("again"):
                cell = f"cell-{actual.index % 2}"
                assert await db.claim(Seen(actual, revision), cell, lrp.scheduling,
                                      time.time_ns())

        await place_all(other, "old")

        async def created_again() -> None:
            await place_all(other, "new")

        racing.between = created_again
        await remover.delete_desired("again")

        new_guids = {actual.instance_guid for actual, _ in await other.list_actual("again")}
        kvs, _ = await store.get_prefix(keys.ASSIGNMENTS)
        assert len(kvs) == BIG, f"{BIG - len(kvs)} of the new app's assignments were deleted"
        assert {json.loads(kv.value)["instance_guid"] for kv in kvs} == new_guids
    finally:
        await racing.close()
