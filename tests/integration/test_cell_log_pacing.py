"""A burst far larger than the cell's publisher backlog loses no line: the cell stops reading
the container's log stream while the backlog is half full, and Docker keeps the rest."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import aiohttp
import pytest

from lattice.models import ServiceRecord
from lattice.store import Etcd, keys
from tests.support_cell import CellUnderTest, claim, desire, run_info, wait_for

pytestmark = pytest.mark.integration

BACKLOG = 10_000       # LogPublisher's default, which the cell uses
LINES = 5 * BACKLOG


@pytest.fixture
def logagg_process(etcd_endpoint: str) -> Iterator[subprocess.Popen[bytes]]:
    """An aggregator in its own process, as in a box: in this test's event loop it would take
    turns with the cell, which could then never outrun it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "lattice.cli.server", "logagg", "--etcd", etcd_endpoint,
         "--recent-lines", str(LINES * 2)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    yield process
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
async def logagg_address(logagg_process: subprocess.Popen[bytes], etcd: Etcd) -> str:
    async def registered() -> str | None:
        kvs, _ = await etcd.get_prefix(keys.SERVICES + "doppler/")
        return ServiceRecord.from_dict(json.loads(kvs[0].value)).address if kvs else None

    return await wait_for(registered, "the aggregator in etcd")


async def test_a_burst_five_times_the_backlog_arrives_whole_and_in_order(
    etcd_endpoint: str, etcd: Etcd, demo_image: str, logagg_address: str
) -> None:
    cell = CellUnderTest(etcd_endpoint, publish_logs=True)
    try:
        await cell.start()
        # Builtins only: the shell prints the burst in well under a second.
        script = (f'i=0; while [ "$i" -lt {LINES} ]; do i=$((i+1)); echo "n $i"; done; '
                  "exec sleep 3600")
        await desire(etcd, run_info("burst", demo_image, command=("/bin/sh", "-c", script),
                                    monitor=None), instances=1)
        await claim(etcd, cell.cell_id, "burst", 0)
        async with aiohttp.ClientSession() as http:

            async def arrived() -> list[dict[str, str]] | None:
                async with http.get(f"http://{logagg_address}/apps/burst/recentlogs") as got:
                    envelopes: list[dict[str, str]] = await got.json()
                done = [e for e in envelopes if e["source_type"] in ("APP", "LGR")]
                finished = any(e["message"] == f"n {LINES}" for e in done)
                return done if finished or any(e["source_type"] == "LGR" for e in done) else None

            envelopes: list[dict[str, str]] = await wait_for(
                arrived, f"line {LINES} at the aggregator", within_s=120)
        assert [e["message"] for e in envelopes if e["source_type"] == "LGR"] == []
        assert [e["message"] for e in envelopes] == [f"n {i}" for i in range(1, LINES + 1)]
    finally:
        await cell.close()
