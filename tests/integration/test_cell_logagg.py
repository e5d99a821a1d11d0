"""The cell's default log path: a real container's lines reach a real log aggregator."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from lattice.models import ServiceRecord
from lattice.store import Etcd, keys
from logagg.config import LogaggConfig
from logagg.main import serve as serve_logagg
from tests.support_cell import CellUnderTest, claim, desire, run_info, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
async def logagg_address(etcd_endpoint: str, etcd: Etcd) -> AsyncIterator[str]:
    ready = asyncio.Event()
    task = asyncio.create_task(serve_logagg(LogaggConfig(etcd_endpoints=etcd_endpoint),
                                            ready=ready))
    try:
        await asyncio.wait_for(ready.wait(), 30)
        kvs, _ = await etcd.get_prefix(keys.SERVICES + "doppler/")
        yield ServiceRecord.from_dict(json.loads(kvs[0].value)).address
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_container_output_reaches_the_log_aggregator(
    etcd_endpoint: str, etcd: Etcd, demo_image: str, logagg_address: str
) -> None:
    cell = CellUnderTest(etcd_endpoint, publish_logs=True)
    try:
        await cell.start()
        script = "echo hello-logagg; echo oops-logagg >&2; exec sleep 3600"
        await desire(etcd, run_info("chatty", demo_image, command=("/bin/sh", "-c", script),
                                    monitor=None), instances=1)
        await claim(etcd, cell.cell_id, "chatty", 0)
        async with aiohttp.ClientSession() as http:

            async def app_lines() -> list[tuple[str, str]] | None:
                url = f"http://{logagg_address}/apps/chatty/recentlogs"
                async with http.get(url) as response:
                    envelopes = await response.json()
                lines = sorted((e["message_type"], e["message"]) for e in envelopes
                               if e["source_type"] == "APP")
                return lines if len(lines) >= 2 else None

            lines = await wait_for(app_lines, "two APP lines at the aggregator")
        assert lines == [("ERR", "oops-logagg"), ("OUT", "hello-logagg")]
    finally:
        await cell.close()
