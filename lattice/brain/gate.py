"""Admission of one function's invocations: at most `concurrency` run, at most `queue` wait.

    request ──> free slot? ── yes ──> run, then hand the slot to the oldest waiter
                  │ no
                  v
                queue full? ── yes ──> QueueFull (the handler answers 429 at once)
                  │ no
                  v
                wait in line (first come, first served)

Asyncio only, no I/O: the invoker holds one Gate per function and brain. A slot is handed
straight to the next waiter on release, so a newcomer cannot overtake the line.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class QueueFull(Exception):
    """Every slot is taken and the wait queue is full."""


class Gate:
    def __init__(self, concurrency: int, queue: int) -> None:
        self.concurrency = concurrency
        self.queue = queue
        self.active = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def reserve(self) -> asyncio.Future[None]:
        """A place: a future done once a slot is this caller's. QueueFull if there is none.

        Deciding at once lets a caller answer before waiting (202 with a callback)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.active < self.concurrency and not self._waiters:
            self.active += 1
            future.set_result(None)
        elif len(self._waiters) >= self.queue:
            raise QueueFull(f"{self.active} running and {len(self._waiters)} waiting")
        else:
            self._waiters.append(future)
        return future

    async def wait(self, place: asyncio.Future[None]) -> None:
        """Wait for a reserved place; a cancelled wait gives its place (or slot) back."""
        try:
            await asyncio.shield(place)
        except asyncio.CancelledError:
            if place.done() and not place.cancelled():
                self.release()              # the slot came just as we gave up: pass it on
            else:
                place.cancel()
                if place in self._waiters:
                    self._waiters.remove(place)
            raise

    def release(self) -> None:
        """Give a slot back: to the oldest waiter, else free it."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.active -= 1

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a slot for the block; QueueFull at once if the line is full."""
        await self.wait(self.reserve())
        try:
            yield
        finally:
            self.release()
