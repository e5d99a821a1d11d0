"""Brain HA: several brains serve the API; one leads, and only the leader converges and places.

The leader holds `/lattice/v1/brain/leader` under a lease it keeps alive. Another brain tries to
create that key every RETRY_S; it succeeds once the leader's lease is revoked (a clean stop) or
expires (a dead or cut-off leader, within LEASE_TTL_S).

At most one brain acts as leader at a time: a leader counts its lease as valid only until one TTL
after it *sent* the last request that granted or renewed it, less a margin, which is no later
than etcd can expire it. It stops its work at that moment if no renewal has come back, without
waiting for etcd to answer (etcd unreachable, frozen, or this process paused past its lease).
Even so, every write of a controller is a compare-and-swap, so a leader that is late to notice
its loss cannot overwrite newer state. A brain that stepped down campaigns again; one whose work
does not stop when cancelled raises LeadershipStuck, which ends the process (brain/main.py) for
its supervisor to restart: a brain never keeps running controllers it may not own.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from lattice.store import Etcd, StoreError, keys
from lattice.store.etcd import ModRevisionIs, Put

log = structlog.get_logger("lattice.brain.leader")

LEASE_TTL_S = 5
RETRY_S = 1.0
# How long before etcd could expire the lease a leader stops counting on it: covers the time a
# renewal's request takes to reach etcd and clock-rate differences.
SAFETY_MARGIN_S = 1.0
# Cancelled work that has not ended by then will not: the process must end instead.
STOP_TIMEOUT_S = 10.0


class LeadershipStuck(RuntimeError):
    """The work of a term did not stop when cancelled, or failed: the process must end."""


Work = Callable[[], Coroutine[Any, Any, None]]


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

    async def _try_acquire(self) -> tuple[int, float] | None:
        """(lease, valid until on the monotonic clock) of a new term if this brain took the
        lock, else None."""
        sent = time.monotonic()
        lease = await self._etcd.grant_lease(self._ttl_s)
        taken = await self._etcd.txn(
            [ModRevisionIs(keys.BRAIN_LEADER, 0)],      # only if no one holds it
            [Put(keys.BRAIN_LEADER, self._identity.encode(), lease=lease)],
        )
        if taken:
            return lease, self._valid_until(sent)
        with contextlib.suppress(StoreError):
            await self._etcd.revoke_lease(lease)
        return None

    def _valid_until(self, sent: float) -> float:
        """When a lease granted or renewed by a request sent at `sent` may no longer hold."""
        return sent + self._ttl_s - min(SAFETY_MARGIN_S, self._ttl_s / 4)

    async def _hold(self, lease: int, valid_until: float, work: asyncio.Future[list[None]]) -> None:
        """Renew the lease until the work ends, a renewal fails, or the lease may have expired."""
        while not work.done():
            pause = min(self._ttl_s / 3, valid_until - time.monotonic())
            if pause > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(work), pause)
            if work.done():
                return
            sent = time.monotonic()
            if sent >= valid_until:
                log.warning("leader-lease-may-have-expired", late_s=round(sent - valid_until, 3))
                return
            try:
                renewed = await asyncio.wait_for(self._etcd.keep_alive(lease), valid_until - sent)
            except TimeoutError:
                log.warning("leader-renew-too-late")
                return
            except StoreError as exc:
                log.warning("leader-renew-failed", error=str(exc))
                return
            if not renewed:
                log.warning("leader-lease-expired")
                return
            valid_until = self._valid_until(sent)

    async def run_while_leader(self, *jobs: Work) -> None:
        """Run `jobs` during each term this brain leads; forever, until cancelled. Raises
        LeadershipStuck if a term's work does not stop."""
        while True:
            try:
                term = await self._try_acquire()
            except StoreError as exc:
                log.warning("leader-election-failed", error=str(exc))
                term = None
            if term is None:
                self.first_attempt_done.set()
                await asyncio.sleep(self._retry_s)
                continue
            lease, valid_until = term
            self.is_leader = True
            log.info("leader-elected", identity=self._identity)
            running: list[asyncio.Task[None]] = [
                asyncio.create_task(job(), name=getattr(job, "__qualname__", "job"))
                for job in jobs
            ]
            # Ends with the first job that fails (and then _stop ends the others too).
            work = asyncio.gather(*running)
            self.first_attempt_done.set()
            try:
                await self._hold(lease, valid_until, work)
            finally:
                self.is_leader = False
                await self._stop(running, work)
                log.warning("leader-term-ended", identity=self._identity)
                # Revoking lets another brain take over at once, not after the TTL; when etcd
                # does not answer, the lease expires by itself.
                with contextlib.suppress(StoreError, TimeoutError):
                    await asyncio.wait_for(self._etcd.revoke_lease(lease), self._ttl_s)

    async def _stop(self, running: list[asyncio.Task[None]],
                    work: asyncio.Future[list[None]]) -> None:
        """Cancel every job of the term and wait for each to end. A job that failed ends the
        process (a bug: its supervisor restarts it, with a backoff) rather than campaigning
        again at once into the same failure."""
        for task in running:
            task.cancel()
        _, pending = await asyncio.wait(running, timeout=STOP_TIMEOUT_S)
        if not work.cancelled() and work.done():
            work.exception()        # retrieved here: each task's own error is raised below
        if pending:
            log.error("leader-work-stuck", identity=self._identity,
                      jobs=[task.get_name() for task in pending])
            raise LeadershipStuck(f"the leader's work did not stop within {STOP_TIMEOUT_S} s")
        for task in running:
            if not task.cancelled() and task.exception() is not None:
                log.error("leader-work-failed", identity=self._identity,
                          error=repr(task.exception()))
                raise LeadershipStuck("a job of the leader failed") from task.exception()
