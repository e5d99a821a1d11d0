"""Records kept alive under one etcd lease: a cell's presence, a component's service record.

If the process dies the lease expires and etcd deletes the records, which is how the brain
notices a lost cell and the router drops a dead component's route. If the lease is lost while
the process lives (etcd restarted, a long pause), a new lease is granted and the records put back.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from lattice.store.errors import StoreError
from lattice.store.etcd import Etcd

log = structlog.get_logger("lattice.store.presence")


class LeasedRecords:
    def __init__(self, etcd: Etcd, records: dict[str, bytes], ttl_s: int = 5) -> None:
        self._etcd = etcd
        self._records = dict(records)
        self._ttl_s = ttl_s
        self._lease: int | None = None
        self.registered = asyncio.Event()

    async def _register(self) -> None:
        lease = await self._etcd.grant_lease(self._ttl_s)
        for key, value in self._records.items():
            await self._etcd.put(key, value, lease=lease)
        self._lease = lease
        self.registered.set()

    async def run(self) -> None:
        """Hold the records until cancelled; refresh the lease three times per TTL."""
        interval = self._ttl_s / 3
        while True:
            try:
                if self._lease is None or not await self._etcd.keep_alive(self._lease):
                    if self._lease is not None:
                        log.warning("lease-lost", keys=list(self._records))
                    await self._register()
            except StoreError as exc:
                log.warning("lease-refresh-failed", error=str(exc))
                self._lease = None
            await asyncio.sleep(interval)

    async def update(self, key: str, value: bytes) -> None:
        """Change or add one record; written under the lease at once if one is held (else at
        the next registration)."""
        self._records[key] = value
        if self._lease is not None:
            await self._etcd.put(key, value, lease=self._lease)

    async def release(self) -> None:
        """Delete the records now instead of waiting for the lease to expire."""
        if self._lease is not None:
            with contextlib.suppress(StoreError):
                await self._etcd.revoke_lease(self._lease)
            self._lease = None
