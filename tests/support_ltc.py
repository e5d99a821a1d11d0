"""Helpers for ltc's tests: polling with a deadline, and a real brain API in a subprocess.

The brain runs as its own process (as `lattice up` runs it) so that ltc, which runs its own
event loop per command, is driven exactly as a user drives it.
"""

from __future__ import annotations

import http.client
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from lattice.etcd_server import free_port

T = TypeVar("T")

_BRAIN_SCRIPT = """
import asyncio, sys
from lattice.brain.config import BrainConfig
from lattice.brain.main import serve
endpoint, port, domain = sys.argv[1], int(sys.argv[2]), sys.argv[3]
asyncio.run(serve(BrainConfig(etcd_endpoints=endpoint, port=port, domain=domain,
                              converge_interval_s=0.5, cell_grace_s=0.0)))
"""


def wait_for(check: Callable[[], T | None], timeout: float, what: str, every: float = 0.05) -> T:
    """Poll `check` until it returns something truthy; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


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


def _healthy(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


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
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
