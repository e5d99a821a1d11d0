"""Helpers for the log aggregator's tests: polling with a deadline, running real aggregators."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from lattice.models import ServiceRecord
from lattice.store import Etcd, keys
from logagg import Envelope, LogaggConfig, serve, tail

DEADLINE_S = 25.0
POLL_S = 0.02


async def wait_for(predicate: Callable[[], bool], deadline_s: float = DEADLINE_S,
                   what: str = "condition") -> None:
    """Poll `predicate` until it holds; fail the test with `what` after `deadline_s` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {deadline_s} s waiting for {what}")
        await asyncio.sleep(POLL_S)


async def doppler_records(etcd: Etcd) -> dict[str, ServiceRecord]:
    listed, _ = await etcd.get_prefix(keys.SERVICES + "doppler/")
    return {kv.key: ServiceRecord.from_dict(json.loads(kv.value)) for kv in listed}


@dataclass
class RunningAggregator:
    task: asyncio.Task[None]
    key: str
    record: ServiceRecord

    @property
    def base_url(self) -> str:
        return f"http://{self.record.address}"


class Aggregators:
    """Starts real `serve()` tasks on free ports; stops every one it started."""

    def __init__(self, etcd: Etcd, etcd_endpoint: str) -> None:
        self._etcd = etcd
        self._endpoint = etcd_endpoint
        self._running: list[RunningAggregator] = []

    async def start(self, **overrides: Any) -> RunningAggregator:
        before = await doppler_records(self._etcd)
        ready = asyncio.Event()
        config = LogaggConfig(etcd_endpoints=self._endpoint, **overrides)
        task = asyncio.create_task(serve(config, ready=ready))
        ready_wait = asyncio.create_task(ready.wait())
        await asyncio.wait({task, ready_wait}, timeout=DEADLINE_S,
                           return_when=asyncio.FIRST_COMPLETED)
        if not ready.is_set():
            ready_wait.cancel()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task          # re-raises what made serve() fail, if anything did
            raise AssertionError("the log aggregator did not become ready")
        after = await doppler_records(self._etcd)
        (key,) = set(after) - set(before)
        running = RunningAggregator(task, key, after[key])
        self._running.append(running)
        return running

    async def stop(self, running: RunningAggregator) -> None:
        running.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(running.task, DEADLINE_S)
        if running in self._running:
            self._running.remove(running)

    async def stop_all(self) -> None:
        for running in list(self._running):
            await self.stop(running)


async def wait_until(predicate: Callable[[], Awaitable[bool]], deadline_s: float = DEADLINE_S,
                     what: str = "condition") -> None:
    """`wait_for` for a predicate that has to await (an HTTP request, an etcd read)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {deadline_s} s waiting for {what}")
        await asyncio.sleep(POLL_S)


PROBE = "probe: is the stream live yet?"


class TailCollector:
    """Runs `logagg.tail` in a task and keeps what it yields, for a test to look at."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, app_id: str) -> None:
        self.lines: list[Envelope] = []
        self.ended = False
        self.task = asyncio.create_task(self._collect(session, base_url, app_id))

    async def _collect(self, session: aiohttp.ClientSession, base_url: str,
                       app_id: str) -> None:
        async for envelope in tail(session, base_url, app_id):
            self.lines.append(envelope)
        self.ended = True

    def without_probes(self) -> list[Envelope]:
        return [e for e in self.lines if e.message != PROBE]

    async def wait_until_live(self, emit: Callable[[Envelope], Awaitable[None]],
                              app_id: str) -> int:
        """Emit probes until one comes back: the stream is live. Returns how many were sent.

        tail() hides its handshake, so a line that arrives is the only proof it is done.
        """
        sent = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE_S
        while not any(e.message == PROBE for e in self.lines):
            if self.task.done():
                await self.task         # raises what ended it
                raise AssertionError("the tail ended before it was live")
            if loop.time() > deadline:
                raise AssertionError("the tail never became live")
            await emit(Envelope.now(app_id, "APP", "0", PROBE))
            sent += 1
            await asyncio.sleep(POLL_S)
        return sent

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
