"""Brains served in the test's own process, on a real etcd, and JSON calls to their API."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from lattice.brain.config import BrainConfig
from lattice.brain.main import serve
from lattice.models import ServiceRecord
from lattice.store import Etcd, keys

START_TIMEOUT_S = 20.0


async def receptor_records(etcd_endpoint: str) -> list[ServiceRecord]:
    """The API service records the brains on this etcd have published."""
    etcd = Etcd(etcd_endpoint)
    try:
        kvs, _ = await etcd.get_prefix(keys.SERVICES + "receptor/")
    finally:
        await etcd.close()
    return [ServiceRecord.from_dict(json.loads(kv.value)) for kv in kvs]


@contextlib.asynccontextmanager
async def brains_in_process(
    etcd_endpoint: str, domain: str, count: int = 1
) -> AsyncIterator[list[str]]:
    """`count` brains serving on free ports (the first one started leads); yields their API
    base URLs, read from their service records. Each is cancelled and awaited on exit."""
    tasks: list[asyncio.Task[None]] = []
    try:
        for _ in range(count):
            ready = asyncio.Event()
            tasks.append(asyncio.create_task(serve(
                BrainConfig(etcd_endpoints=etcd_endpoint, domain=domain), ready=ready)))
            await asyncio.wait_for(ready.wait(), START_TIMEOUT_S)
        records = await receptor_records(etcd_endpoint)
        assert len(records) == count, f"{len(records)} API records for {count} brains"
        yield [f"http://{record.address}" for record in records]
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def call(
    http: aiohttp.ClientSession, method: str, url: str, body: object = None
) -> tuple[int, Any]:
    """The status and the decoded JSON body (None when the body is empty)."""
    async with http.request(method, url, json=body) as response:
        raw = await response.read()
        return response.status, (json.loads(raw) if raw else None)
