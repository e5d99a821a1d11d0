"""The cluster's identity: one id per etcd, created by whichever component asks first.

Docker labels are global to an engine, and several boxes may share one engine (a developer's
box beside the tests' boxes). Containers carry the cluster id, so a cell never touches the
containers of another box that happens to use the same cell id.
"""

from __future__ import annotations

import uuid

from lattice.store import keys
from lattice.store.errors import StoreError
from lattice.store.etcd import Etcd, ModRevisionIs, Put


async def ensure_cluster_id(etcd: Etcd) -> str:
    existing = await etcd.get(keys.CLUSTER_ID)
    if existing is not None:
        return existing.value.decode()
    fresh = uuid.uuid4().hex[:12].encode()
    await etcd.txn([ModRevisionIs(keys.CLUSTER_ID, 0)], [Put(keys.CLUSTER_ID, fresh)])
    created = await etcd.get(keys.CLUSTER_ID)
    if created is None:
        raise StoreError("the cluster id vanished right after it was written")
    return created.value.decode()
