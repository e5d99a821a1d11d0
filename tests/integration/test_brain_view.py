"""The brain's ClusterView against a real etcd: its per-app index of ActualLRPs (read by the
autoscaler and by a wake) follows puts and deletes as the full cache does."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest

from lattice.brain.db import unclaimed
from lattice.brain.state import ClusterView
from lattice.store import Etcd, keys
from tests.support_cell import wait_for

pytestmark = pytest.mark.integration


async def put_instance(etcd: Etcd, guid: str, index: int) -> None:
    actual = unclaimed(guid, index, 1)
    await etcd.put(keys.actual(guid, index), json.dumps(actual.to_dict()).encode())


async def test_instances_by_app_follow_the_store(etcd: Etcd) -> None:
    view = ClusterView(etcd)
    running = asyncio.create_task(view.actual.run())
    try:
        for index in range(3):
            await put_instance(etcd, "a", index)
        await put_instance(etcd, "b", 0)
        await put_instance(etcd, "a-b", 0)       # a guid that extends another's is its own app

        def indices(guid: str) -> list[int]:
            return sorted(seen.actual.index for seen in view.instances_of(guid))

        await wait_for(lambda: indices("a") == [0, 1, 2] and indices("a-b") == [0],
                       "the view to hold every instance")
        assert indices("b") == [0]

        await etcd.delete_prefix(keys.actual_prefix("a"))
        await wait_for(lambda: indices("a") == [], "app a's instances to leave the index")
        assert indices("a-b") == [0]
        assert indices("b") == [0]
        assert view.instances_of("nobody") == []
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
