"""Brain HA: several brains serve the API; one leads, and only the leader converges and places.

The leader holds `/lattice/v1/brain/leader` under a lease it keeps alive. Another brain tries to
create that key every RETRY_S; it succeeds once the leader's lease is revoked (a clean stop) or
expires (a dead or cut-off leader, within LEASE_TTL_S). A leader that fails to renew stops its
work at once: two controllers never act on the same term. Even so, every write of a controller is
a compare-and-swap, so a leader that is late to notice its loss cannot overwrite newer state.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from lattice.store import Etcd, StoreError, keys
from lattice.store.etcd import ModRevisionIs, Put

log = structlog.get_logger("lattice.brain.leader")

LEASE_TTL_S = 5
RETRY_S = 1.0

Work = Callable[[], Awaitable[None]]


class LeaderElection:
    def __init__(self, etcd: Etcd, *, identity: str, ttl_s: int = LEASE_TTL_S,
                 retry_s: float = RETRY_S) -> None:
        self._etcd = etcd
        self._identity = identity
        self._ttl_s = ttl_s
        self._retry_s = retry_s
        self.is_leader = False
        # Set once the first attempt is decided, so a brain announces itself knowing its role.
        self.first_attempt_done = asyncio.Event()

    async def _try_acquire(self) -> int | None:
        """The lease of a new term if this brain took the lock, else None."""
        lease = await self._etcd.grant_lease(self._ttl_s)
        taken = await self._etcd.txn(
            [ModRevisionIs(keys.BRAIN_LEADER, 0)],      # only if no one holds it
            [Put(keys.BRAIN_LEADER, self._identity.encode(), lease=lease)],
        )
        if taken:
            return lease
        with contextlib.suppress(StoreError):
            await self._etcd.revoke_lease(lease)
        return None

    async def _hold(self, lease: int, work: asyncio.Future[list[None]]) -> None:
        """Renew the lease until the work ends or a renewal fails."""
        while not work.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(work), self._ttl_s / 3)
            if work.done():
                return
            try:
                renewed = await self._etcd.keep_alive(lease)
            except StoreError as exc:
                log.warning("leader-renew-failed", error=str(exc))
                renewed = False
            if not renewed:
                return

    async def run_while_leader(self, *jobs: Work) -> None:
        """Run `jobs` during each term this brain leads; forever, until cancelled."""
        while True:
            try:
                lease = await self._try_acquire()
            except StoreError as exc:
                log.warning("leader-election-failed", error=str(exc))
                lease = None
            if lease is None:
                self.first_attempt_done.set()
                await asyncio.sleep(self._retry_s)
                continue
            self.is_leader = True
            log.info("leader-elected", identity=self._identity)
            work = asyncio.gather(*(job() for job in jobs))
            self.first_attempt_done.set()
            try:
                await self._hold(lease, work)
            finally:
                self.is_leader = False
                work.cancel()
                try:
                    with contextlib.suppress(asyncio.CancelledError):
                        await work
                finally:
                    # Revoking lets another brain take over at once, not after the TTL.
                    with contextlib.suppress(StoreError):
                        await self._etcd.revoke_lease(lease)
                    log.warning("leader-term-ended", identity=self._identity)
