"""Helpers for ltc's tests: polling with a deadline, and a real brain API in a subprocess.

The brain runs as its own process (as `lattice up` runs it) so that ltc, which runs its own
event loop per command, is driven exactly as a user drives it.
"""

from __future__ import annotations

import asyncio
import http.client
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lattice.etcd_server import free_port
from tests.waiting import wait_for

__all__ = ["Brain", "http_get", "running_brain", "running_cell", "running_logagg",
           "start_cell", "wait_for"]

_BRAIN_SCRIPT = """
import asyncio, sys
from lattice.brain.config import BrainConfig
from lattice.brain.main import serve
endpoint, port, domain = sys.argv[1], int(sys.argv[2]), sys.argv[3]
asyncio.run(serve(BrainConfig(etcd_endpoints=endpoint, port=port, domain=domain,
                              converge_interval_s=0.5, cell_grace_s=0.0)))
"""


_CELL_SCRIPT = """
import asyncio, sys
from lattice.cell import CellConfig, serve
endpoint, cell_id, metrics_s, disk_s = sys.argv[1], sys.argv[2], *map(float, sys.argv[3:5])
asyncio.run(serve(CellConfig(cell_id=cell_id, etcd_endpoints=endpoint, memory_mb=4096,
                             disk_mb=4096, containers=16, metrics_interval_s=metrics_s,
                             metrics_disk_interval_s=disk_s)))
"""

_LOGAGG_SCRIPT = """
import asyncio, sys
from logagg.config import LogaggConfig
from logagg.main import serve
endpoint, port, domain = sys.argv[1], int(sys.argv[2]), sys.argv[3]
asyncio.run(serve(LogaggConfig(etcd_endpoints=endpoint, port=port, domain=domain)))
"""


@dataclass(frozen=True)
class Brain:
    port: int
    domain: str
    log_path: Path

    @property
    def target(self) -> str:
        return f"{self.domain}:{self.port}"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


def http_get(port: int, path: str, host: str | None = None) -> tuple[int, bytes] | None:
    """GET from 127.0.0.1:port; None when nothing answers."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers={"Host": host} if host else {})
        response = conn.getresponse()
        return response.status, response.read()
    except OSError:
        return None
    finally:
        conn.close()


def _healthy(port: int) -> bool:
    answer = http_get(port, "/health")
    return answer is not None and answer[0] == 200


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def running_brain(etcd_endpoint: str, domain: str, log_dir: Path) -> Iterator[Brain]:
    """The real brain API on a free loopback port; stopped (and waited for) on exit."""
    brain = Brain(free_port(), domain, log_dir / "brain.log")
    with open(brain.log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", _BRAIN_SCRIPT, etcd_endpoint, str(brain.port), domain],
            stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        def up() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"the brain exited:\n{brain.logs()}")
            return _healthy(brain.port)

        wait_for(up, 30, "the brain to answer /health")
        yield brain
    finally:
        _stop(process)


async def _cluster_id(etcd_endpoint: str) -> str:
    from lattice.store import Etcd, ensure_cluster_id

    etcd = Etcd(etcd_endpoint)
    try:
        return await ensure_cluster_id(etcd)
    finally:
        await etcd.close()


def start_cell(etcd_endpoint: str, cell_id: str, log_path: Path, *,
               metrics_interval_s: float = 5.0,
               metrics_disk_interval_s: float = 30.0) -> subprocess.Popen[bytes]:
    """A real cell process, logging to `log_path`; the caller stops it."""
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-c", _CELL_SCRIPT, etcd_endpoint, cell_id,
             str(metrics_interval_s), str(metrics_disk_interval_s)],
            stdout=log, stderr=subprocess.STDOUT,
        )


@contextmanager
def running_cell(etcd_endpoint: str, brain: Brain, log_dir: Path) -> Iterator[str]:
    """A real cell (Docker containers on 127.0.0.1) under a unique id, present to the brain.

    On exit the cell is stopped and every container it started is removed.
    """
    from lattice.cell import remove_cell_containers

    cell_id = f"ltc-test-{uuid.uuid4().hex[:8]}"
    process = start_cell(etcd_endpoint, cell_id, log_dir / "cell.log")
    try:
        def present() -> bool:
            if process.poll() is not None:
                raise AssertionError((log_dir / "cell.log").read_text(errors="replace"))
            answer = http_get(brain.port, "/v1/cells")
            return answer is not None and cell_id in answer[1].decode()

        wait_for(present, 30, f"cell {cell_id} to be present")
        yield cell_id
    finally:
        _stop(process)
        remove_cell_containers(asyncio.run(_cluster_id(etcd_endpoint)), cell_id)


@contextmanager
def running_logagg(etcd_endpoint: str, domain: str, log_dir: Path) -> Iterator[int]:
    """The real log aggregator on a free loopback port (yielded), registered as `doppler`."""
    port = free_port()
    with open(log_dir / "logagg.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", _LOGAGG_SCRIPT, etcd_endpoint, str(port), domain],
            stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        def up() -> bool:
            if process.poll() is not None:
                raise AssertionError((log_dir / "logagg.log").read_text(errors="replace"))
            return _healthy(port)

        wait_for(up, 30, "the log aggregator to answer /health")
        yield port
    finally:
        _stop(process)
