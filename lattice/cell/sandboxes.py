"""Prewarmed network sandboxes: the cell's head start on `docker start`.

Most of a `docker start` (~200 ms here) goes into the container's network: a veth pair on the
bridge, iptables rules, and a docker-proxy per published port. A sandbox is a tiny container
(busybox's sleep) that holds a network namespace with the ports already published on the cell's
address, started before any instance needs it: Kubernetes' pause container, started ahead of
time as OpenWhisk prewarms its containers. An instance whose ports match a warm sandbox joins
that namespace (`--network container:ID`) and starts in ~80 ms (docs/performance.md).

    warm ──take()──> lent to a runner ──its container is created──> in use
                                                                      │ the container is destroyed
                                                                      v
                                                                    removed

A sandbox serves one instance and is never reused: a new instance never sees the sockets or
the connections of an old one. In use, the sandbox is named by a label on the instance's
container (LABEL_SANDBOX_ID), so ownership survives a restart of the cell: the rep's periodic
sync hands the listing to `sweep`, which removes any sandbox that is neither warm, lent nor
named by a container. The pool keeps `size` warm sandboxes for each of the last few port sets
instances asked for, starting with the most common one, 8080.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import docker.errors
import structlog

from lattice.cell.docker_engine import ContainerFacts, DockerEngine
from lattice.cell.errors import CellError, ContainerStartFailed
from lattice.cell.spec import (
    LABEL_CELL_ID,
    LABEL_CLUSTER_ID,
    LABEL_SANDBOX,
    ContainerSpec,
    container_name_safe,
)
from lattice.images import SANDBOX_IMAGE, ImageBuildError, build_sandbox_image

log = structlog.get_logger("lattice.cell.sandboxes")

T = TypeVar("T")

DEFAULT_PORTS = (8080,)      # Lattice's default app port: the set worth warming before any ask
MAX_PORT_SETS = 4            # port sets kept warm; the least recently asked for goes first
# Refilling waits until takes have been quiet this long: a burst of creates needs the engine
# for its own containers, and a refill competing with them would slow every one.
REFILL_QUIET_S = 0.5
RETRY_S = 5.0
SANDBOX_MEMORY_BYTES = 16 * 1024 * 1024
SANDBOX_PIDS = 4


def port_key(ports: Iterable[int]) -> str:
    """One port set's name: its ports sorted, comma-separated ("8080", "8080,9000"; "" for a
    sandbox that publishes nothing, a task's or a function's)."""
    return ",".join(str(port) for port in sorted(set(ports)))


def key_ports(key: str) -> tuple[int, ...]:
    return tuple(int(part) for part in key.split(",") if part)


@dataclass(frozen=True)
class Sandbox:
    id: str
    host_ports: dict[int, int]        # container port -> host port on the cell's address


def sandbox_create_kwargs(*, cluster_id: str, cell_id: str, address: str,
                          key: str) -> dict[str, Any]:
    """docker-py's `containers.create` arguments for one sandbox: nothing but a namespace."""
    return {
        "image": SANDBOX_IMAGE,
        "name": f"lattice-{container_name_safe(cell_id)}-sandbox-{uuid.uuid4().hex[:12]}",
        "labels": {LABEL_CLUSTER_ID: cluster_id, LABEL_CELL_ID: cell_id, LABEL_SANDBOX: key},
        "ports": {f"{port}/tcp": (address, None) for port in key_ports(key)},
        "detach": True,
        # It runs nothing: no capabilities, no writes, barely any memory or processes.
        "cap_drop": ["ALL"],
        "read_only": True,
        "mem_limit": SANDBOX_MEMORY_BYTES,
        "pids_limit": SANDBOX_PIDS,
    }


class SandboxPool:
    def __init__(self, *, engine: DockerEngine, cluster_id: str, cell_id: str, address: str,
                 size: int, default_ports: tuple[int, ...] = DEFAULT_PORTS) -> None:
        self._engine = engine
        self._cluster_id = cluster_id
        self._cell_id = cell_id
        self._address = address
        self._size = size
        # Port keys to keep warm, the most recently asked for last; each with its warm ones.
        self._warm: OrderedDict[str, list[Sandbox]] = OrderedDict()
        if size > 0:
            self._warm[port_key(default_ports)] = []
        self._lent: set[str] = set()
        self._unheld: set[str] = set()      # unheld in the last sweep's listing
        self._removing: set[str] = set()    # removed by the pool, until Docker says destroyed
        self._enabled = False
        self._wanted = asyncio.Event()
        self._last_take = 0.0
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def enabled(self) -> bool:
        return self._enabled

    def warm_ids(self) -> set[str]:
        return {sandbox.id for warm in self._warm.values() for sandbox in warm}

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Build the image if needed, take over the warm sandboxes an earlier run of this cell
        left, and start keeping the pool full in the background."""
        if self._size <= 0:
            return
        try:
            await asyncio.to_thread(build_sandbox_image)
        except (ImageBuildError, docker.errors.DockerException, OSError) as exc:
            # Instances still start, each with its own network; only the head start is lost.
            log.warning("sandboxes-disabled", error=str(exc))
            return
        self._enabled = True
        containers = await self._engine.list_cell_containers(self._cluster_id, self._cell_id)
        in_use = {c.sandbox_id for c in containers if c.sandbox_id}
        for container in containers:
            key = container.labels.get(LABEL_SANDBOX)
            if key is None or container.id in in_use:
                continue
            if container.running and key in self._warm and len(self._warm[key]) < self._size:
                # The listing has its ports: a sandbox publishes them on its own network.
                self._warm[key].append(Sandbox(container.id, container.host_ports))
            else:
                self._remove_later(container.id)
        log.info("sandboxes-adopted", warm=len(self.warm_ids()))
        self._spawn(self._keep_warm(), "cell-sandboxes")
        self._wanted.set()

    async def close(self) -> None:
        """Stop refilling. Warm sandboxes stay: a restarted cell takes them over, and the box's
        shutdown removes every container of the cell."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    # -- the runners' side -------------------------------------------------------------------

    def take(self, ports: Iterable[int]) -> Sandbox | None:
        """A warm sandbox with exactly these ports published, lent to the caller until it calls
        `settled`; None if there is none (the port set is then kept warm from now on)."""
        if not self._enabled:
            return None
        key = port_key(ports)
        loop = asyncio.get_running_loop()
        self._last_take = loop.time()
        warm = self._warm.get(key)
        if warm is None:
            self._want(key)
            return None
        self._warm.move_to_end(key)
        self._wanted.set()
        if not warm:
            return None
        sandbox = warm.pop(0)
        self._lent.add(sandbox.id)
        return sandbox

    def settled(self, sandbox_id: str) -> None:
        """The borrower's container exists (and names the sandbox), or the sandbox is being
        discarded: from now on the container's label, not the loan, keeps it."""
        self._lent.discard(sandbox_id)

    def discard(self, sandbox_id: str) -> None:
        """Remove the sandbox: its instance's container is gone, or the sandbox died."""
        self.forget(sandbox_id)
        self._remove_later(sandbox_id)

    def forget(self, sandbox_id: str) -> None:
        """The sandbox is gone (removed): neither warm nor lent any more."""
        self._lent.discard(sandbox_id)
        self._unheld.discard(sandbox_id)
        for warm in self._warm.values():
            for sandbox in warm:
                if sandbox.id == sandbox_id:
                    warm.remove(sandbox)
                    self._wanted.set()
                    return

    def gone(self, sandbox_id: str, *, destroyed: bool) -> bool:
        """Docker says the sandbox died (or was destroyed). True if the pool did not remove it
        itself: then whatever ran in its network lost its ports."""
        removed_by_pool = sandbox_id in self._removing
        if destroyed:
            self._removing.discard(sandbox_id)
            self.forget(sandbox_id)
        elif not removed_by_pool:
            self.discard(sandbox_id)
        return not removed_by_pool

    def sweep(self, containers: list[ContainerFacts]) -> None:
        """The rep's periodic sync: remove the sandboxes nobody holds.

        Only one unheld in two listings in a row goes: a listing can be older than the pool's
        state (a sandbox warmed, or a container that names it created, while it was read).
        """
        in_use = {c.sandbox_id for c in containers if c.sandbox_id}
        keep = self.warm_ids() | self._lent | in_use
        listed = {c.id for c in containers if LABEL_SANDBOX in c.labels}
        self._removing &= listed        # a `destroy` event missed: gone all the same
        unheld = {c for c in listed if c not in keep}
        for container_id in unheld & self._unheld:
            log.info("sandbox-orphan-removed", container_id=container_id[:12])
            self._remove_later(container_id)
        self._unheld = unheld - self._unheld

    # -- keeping it warm ---------------------------------------------------------------------

    def _want(self, key: str) -> None:
        self._warm[key] = []
        while len(self._warm) > MAX_PORT_SETS:
            _, dropped = self._warm.popitem(last=False)
            for sandbox in dropped:
                self._remove_later(sandbox.id)
        self._wanted.set()

    async def _keep_warm(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wanted.wait()
            quiet_for = loop.time() - self._last_take
            if quiet_for < REFILL_QUIET_S:
                await asyncio.sleep(REFILL_QUIET_S - quiet_for)
                continue
            self._wanted.clear()
            missing = [key for key, warm in self._warm.items() if len(warm) < self._size]
            for key in missing:
                try:
                    await self._create(key)
                except CellError as exc:
                    log.warning("sandbox-create-failed", ports=key, error=str(exc))
                    await asyncio.sleep(RETRY_S)
                self._wanted.set()      # one at a time: look again, a take may have come
                break

    async def _create(self, key: str) -> None:
        facts = await self._engine.create_and_start_raw(sandbox_create_kwargs(
            cluster_id=self._cluster_id, cell_id=self._cell_id, address=self._address, key=key))
        warm = self._warm.get(key)
        if warm is None or len(warm) >= self._size:     # no longer wanted meanwhile
            await self._engine.remove(facts.id)
            return
        warm.append(Sandbox(facts.id, facts.host_ports))
        log.debug("sandbox-warm", ports=key, container_id=facts.id[:12])

    # -- removal -----------------------------------------------------------------------------

    def _remove_later(self, container_id: str) -> None:
        if container_id in self._removing:
            return
        self._removing.add(container_id)
        self._spawn(self._remove(container_id), f"sandbox-remove-{container_id[:12]}")

    async def _remove(self, container_id: str) -> None:
        try:
            await self._engine.remove(container_id)
        except CellError as exc:
            # The next sync's sweep tries again.
            self._removing.discard(container_id)
            log.warning("sandbox-remove-failed", container_id=container_id[:12], error=str(exc))

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def start_in_sandbox(pool: SandboxPool | None, spec: ContainerSpec,
                           start: Callable[[ContainerSpec], Awaitable[T]]) -> T:
    """`start(spec)` in a warm sandbox with exactly the spec's ports, if the pool has one;
    else, or if that sandbox turns out to be dead, `start(spec)` on the container's own network.
    `start` raises ContainerStartFailed when the engine refuses to start the container."""
    sandbox = pool.take(spec.ports) if pool is not None else None
    if pool is None or sandbox is None:
        return await start(spec)
    try:
        return await start(spec.in_sandbox(sandbox.id, sandbox.host_ports))
    except ContainerStartFailed as exc:
        # The sandbox died after it was warmed (its `die` event not yet seen): the container
        # starts on its own network instead, as it would without a pool.
        log.info("sandbox-unusable", sandbox_id=sandbox.id[:12], error=str(exc))
        pool.discard(sandbox.id)
        return await start(spec)
    except CellError:
        pool.discard(sandbox.id)        # unused (a missing image, the engine away)
        raise
    finally:
        # Cancelled (the cell stopping), the container may exist all the same: only the next
        # sync can tell, and its sweep removes the sandbox if nothing names it.
        pool.settled(sandbox.id)
