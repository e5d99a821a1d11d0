"""`--workers N`: N router processes sharing one listening port (SO_REUSEPORT).

The parent runs no router itself: it starts N children (the same command, one worker each,
all listening with SO_REUSEPORT, so the kernel spreads new connections among them), forwards
SIGTERM/SIGINT to them so each drains gracefully, and waits. If one child dies the others are
stopped and the parent exits non-zero: whatever supervises the router (lattice up) restarts the
whole group, rather than leaving a router running on fewer cores than asked.
Only worker 0 serves the status port, so /metrics and /health answer for one process.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from types import FrameType

import structlog

log = structlog.get_logger("router.workers")

POLL_S = 0.2
STOP_TIMEOUT_S = 30.0


def run_workers(child_argv: Callable[[int], Sequence[str]], count: int) -> int:
    """Run `count` children (`child_argv(index)`) until a signal or a child's death."""
    children = [subprocess.Popen(list(child_argv(index))) for index in range(count)]
    stopping = False

    def forward(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    log.info("router-workers-started", workers=count, pids=[c.pid for c in children])
    try:
        while not stopping:
            dead = [c for c in children if c.poll() is not None]
            if dead:
                log.error("router-worker-died", pid=dead[0].pid, code=dead[0].returncode)
                forward(signal.SIGTERM, None)
                break
            time.sleep(POLL_S)
        return _wait_all(children)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _wait_all(children: list[subprocess.Popen[bytes]]) -> int:
    deadline = time.monotonic() + STOP_TIMEOUT_S
    worst = 0
    for child in children:
        try:
            code = child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            code = child.wait()
        if code not in (0, -signal.SIGTERM, -signal.SIGINT):
            worst = code if code > 0 else 1
    return worst
