"""Supervision of the box's processes for `lattice up`: start in order, restart the dead, stop all.

Each component runs as its own OS process, as it would under systemd on a VM, so that one
crashing component is restarted alone and the others keep serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog

log = structlog.get_logger("lattice.supervisor")

RESTART_BACKOFF_INITIAL_S = 0.5
RESTART_BACKOFF_MAX_S = 10.0
# A process that ran this long before dying is restarted at once, not after a long backoff.
STABLE_AFTER_S = 30.0


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: Sequence[str]
    env: dict[str, str] | None = None


@dataclass
class Supervised:
    spec: ProcessSpec
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    started_at: float = 0.0
    watcher: asyncio.Task[None] | None = field(default=None, repr=False)


class Supervisor:
    def __init__(self) -> None:
        self._children: list[Supervised] = []
        self._stopping = False

    @property
    def pids(self) -> dict[str, int]:
        return {c.spec.name: c.process.pid for c in self._children if c.process is not None}

    async def _spawn(self, child: Supervised) -> None:
        child.process = await asyncio.create_subprocess_exec(
            *child.spec.argv,
            env=child.spec.env,
            stdin=asyncio.subprocess.DEVNULL,
            # Each child in its own process group: a Ctrl-C in the terminal reaches only
            # `lattice up`, which then stops the children in order.
            start_new_session=True,
        )
        child.started_at = time.monotonic()
        log.info("process-started", process=child.spec.name, pid=child.process.pid)

    async def _watch(self, child: Supervised) -> None:
        backoff = RESTART_BACKOFF_INITIAL_S
        while True:
            assert child.process is not None
            code = await child.process.wait()
            if self._stopping:
                return
            ran_for = time.monotonic() - child.started_at
            if ran_for >= STABLE_AFTER_S:
                backoff = RESTART_BACKOFF_INITIAL_S
            log.warning("process-exited", process=child.spec.name, code=code,
                        restart_in_s=backoff)
            await asyncio.sleep(backoff)
            if self._stopping:
                return
            backoff = min(backoff * 2, RESTART_BACKOFF_MAX_S)
            child.restarts += 1
            await self._spawn(child)

    async def start(self, spec: ProcessSpec) -> Supervised:
        child = Supervised(spec)
        await self._spawn(child)
        child.watcher = asyncio.create_task(self._watch(child))
        self._children.append(child)
        return child

    async def stop(self, deadline_s: float = 8.0) -> None:
        """SIGTERM every process, last started first; SIGKILL what is left at the deadline."""
        self._stopping = True
        for child in self._children:
            if child.watcher is not None:
                child.watcher.cancel()
        for child in reversed(self._children):
            if child.process is not None and child.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.process.send_signal(signal.SIGTERM)
        end = time.monotonic() + deadline_s
        for child in reversed(self._children):
            process = child.process
            if process is None:
                continue
            try:
                await asyncio.wait_for(process.wait(), max(0.1, end - time.monotonic()))
            except TimeoutError:
                log.warning("process-killed", process=child.spec.name, pid=process.pid)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
            log.info("process-stopped", process=child.spec.name, code=process.returncode)
