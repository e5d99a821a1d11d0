"""The rep's idempotent queue: one entry per key, never one key in two workers."""

from __future__ import annotations

import asyncio

from lattice.cell.work_queue import KeyedWorkQueue


async def test_a_key_pushed_twice_is_queued_once_in_arrival_order() -> None:
    queue = KeyedWorkQueue()
    for key in ("a", "b", "a", "c", "b"):
        queue.push(key)
    assert len(queue) == 3
    assert [await queue.get() for _ in range(3)] == ["a", "b", "c"]


async def test_a_key_in_progress_is_not_handed_out_again_until_done() -> None:
    queue = KeyedWorkQueue()
    queue.push("a")
    assert await queue.get() == "a"
    queue.push("a")
    queue.push("b")
    assert await queue.get() == "b"          # "a" is skipped while a worker has it
    waiter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)                   # let the waiter find nothing to take
    assert not waiter.done()
    queue.done("a")
    assert await asyncio.wait_for(waiter, 1) == "a"


async def test_a_waiting_worker_wakes_on_push() -> None:
    queue = KeyedWorkQueue()
    waiter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.push("x")
    assert await asyncio.wait_for(waiter, 1) == "x"
