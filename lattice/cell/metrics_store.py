"""The cell's container samples in etcd: put under one lease, deleted only if still ours.

    publish(samples)   keep the lease alive (a new one if it expired), put every sample under
                       it, delete the keys of instances no longer sampled here
    release()          revoke the lease: every sample of this cell goes at once
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import Mapping

import structlog

from lattice.models.metrics import InstanceMetrics
from lattice.store import Delete, Etcd, ModRevisionIs, StoreError, keys

log = structlog.get_logger("lattice.cell.metrics")

MIN_LEASE_TTL_S = 5


def lease_ttl_s(interval_s: float) -> int:
    """Three sampling intervals: one late round must not drop every sample."""
    return max(MIN_LEASE_TTL_S, math.ceil(3 * interval_s))


class MetricsStore:
    def __init__(self, etcd: Etcd, *, ttl_s: int) -> None:
        self._etcd = etcd
        self._ttl_s = ttl_s
        self._lease: int | None = None
        self._written: dict[str, int] = {}      # key -> mod_revision of our last put

    async def _ensure_lease(self) -> int:
        if self._lease is not None and await self._etcd.keep_alive(self._lease):
            return self._lease
        if self._written:
            log.warning("metrics-lease-lost", samples=len(self._written))
        self._written.clear()            # the keys went with the lease
        self._lease = await self._etcd.grant_lease(self._ttl_s)
        return self._lease

    async def publish(self, samples: Mapping[tuple[str, int], InstanceMetrics]) -> None:
        """This round's samples, by (process_guid, index): each put, the others' keys deleted."""
        if not samples and not self._written:
            return      # an idle cell costs etcd nothing; its old lease may simply expire
        lease = await self._ensure_lease()
        encoded = {
            keys.metrics(guid, index): json.dumps(sample.to_dict(), separators=(",", ":")).encode()
            for (guid, index), sample in samples.items()
        }
        revisions = await asyncio.gather(
            *(self._etcd.put(key, value, lease=lease) for key, value in encoded.items())
        )
        stale = {k: r for k, r in self._written.items() if k not in encoded}
        self._written = dict(zip(encoded, revisions, strict=True))
        for key, revision in stale.items():
            # Only if it is still our write: the instance may run on another cell by now,
            # whose sample under the same key must stay.
            await self._etcd.txn([ModRevisionIs(key, revision)], [Delete(key)])

    async def release(self) -> None:
        """Delete every sample of this cell now (revoke the lease)."""
        if self._lease is not None:
            with contextlib.suppress(StoreError):
                await self._etcd.revoke_lease(self._lease)
            self._lease = None
            self._written.clear()
