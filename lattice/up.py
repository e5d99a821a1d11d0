"""`lattice up`: the whole box on one machine, each component its own supervised process."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import docker
import docker.errors
import structlog

from lattice import etcd_server
from lattice.auth import PASSWORD_ENV, USERNAME_ENV, Credentials
from lattice.store import Etcd, ensure_cluster_id
from lattice.supervisor import ProcessSpec, Supervisor

log = structlog.get_logger("lattice.up")

READY_TIMEOUT_S = 60.0


class UpError(Exception):
    """The box cannot start; the message says why and what to do."""


@dataclass(frozen=True, kw_only=True)
class UpConfig:
    data_dir: Path
    domain: str = "lattice.localhost"
    router_port: int = 8080
    listen: str = "127.0.0.1"
    etcd: str | None = None         # existing endpoints; None: spawn etcd under data_dir
    cells: int = 1
    credentials: Credentials | None = None  # None: an open box, reachable from loopback only

    @property
    def cell_ids(self) -> list[str]:
        return [f"cell-{i}" for i in range(self.cells)]

    def cell_address(self, i: int) -> str:
        # Extra cells advertise 127.0.0.2, 127.0.0.3, ...: all loopback, all on this machine.
        return f"127.0.0.{i + 1}"

    @property
    def router_url(self) -> str:
        host = "127.0.0.1" if self.listen in ("0.0.0.0", "::") else self.listen  # noqa: S104
        return f"http://{host}:{self.router_port}"


def check_config(config: UpConfig) -> None:
    try:
        address = ipaddress.ip_address(config.listen)
    except ValueError as exc:
        raise UpError(f"--listen {config.listen!r} is not an IP address") from exc
    if not address.is_loopback and config.credentials is None:
        raise UpError(
            f"--listen {config.listen} would make the box reachable from a network, which needs "
            f"credentials: give --username and --password (or {USERNAME_ENV} and "
            f"{PASSWORD_ENV}), or listen on 127.0.0.1"
        )
    if not 1 <= config.router_port <= 65535:
        raise UpError(f"--router-port {config.router_port} is outside 1-65535")
    if config.cells < 1:
        raise UpError("--cells must be at least 1")


def check_docker() -> None:
    try:
        client = docker.from_env()
        try:
            client.ping()
        finally:
            client.close()
    except docker.errors.DockerException as exc:
        raise UpError(
            f"no Docker engine answers ({exc}); start one (e.g. `dockerd &`) or run `make deps`"
        ) from exc


class PidLock:
    """One `lattice up` per data dir: two would fight over the same etcd data."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def acquire(self) -> None:
        if self.path.exists():
            try:
                pid = int(self.path.read_text().strip())
                os.kill(pid, 0)
            except (ValueError, ProcessLookupError):
                pass  # a stale file from a box that did not stop cleanly
            except PermissionError as exc:
                raise UpError(f"{self.path} belongs to another user's running box") from exc
            else:
                raise UpError(
                    f"another `lattice up` (pid {pid}) is running on {self.path.parent}"
                )
        self.path.write_text(str(os.getpid()))

    def release(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def component_env(credentials: Credentials | None) -> dict[str, str]:
    """The children's environment. Credentials travel here, never in argv, where `ps` and the
    supervisor's log lines would show them; an open box removes any inherited ones."""
    env = {k: v for k, v in os.environ.items() if k not in (USERNAME_ENV, PASSWORD_ENV)}
    if credentials is not None:
        env[USERNAME_ENV] = credentials.username
        env[PASSWORD_ENV] = credentials.password
    return env


def _component(name: str, env: dict[str, str], *args: str) -> ProcessSpec:
    argv = [sys.executable, "-m", "lattice.cli.server", name, *args]
    return ProcessSpec(name=name, argv=argv, env=env)


def component_specs(config: UpConfig, etcd: str) -> list[ProcessSpec]:
    env = component_env(config.credentials)
    specs = [
        _component("brain", env, "--etcd", etcd, "--domain", config.domain),
        _component("logagg", env, "--etcd", etcd, "--domain", config.domain),
        _component("router", env, "--etcd", etcd, "--listen", config.listen,
                   "--port", str(config.router_port)),
    ]
    for i, cell_id in enumerate(config.cell_ids):
        # Cells need the credentials too: they publish their logs to the aggregator.
        spec = _component("cell", env, "--etcd", etcd, "--cell-id", cell_id,
                          "--address", config.cell_address(i))
        specs.append(ProcessSpec(name=cell_id, argv=spec.argv, env=spec.env))
    return specs


async def wait_until_ready(config: UpConfig, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Ready means: through the router, the API answers, every cell is present and the log
    aggregator answers. That is what a user's first `ltc` command needs."""
    deadline = time.monotonic() + timeout_s
    auth = {} if config.credentials is None else {"Authorization": config.credentials.header()}
    api = {"Host": f"receptor.{config.domain}", **auth}
    logs = {"Host": f"doppler.{config.domain}", **auth}
    last = "nothing answered yet"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(f"{config.router_url}/v1/cells", headers=api) as r:
                    cells = await r.json() if r.status == 200 else []
                    last = f"API answered {r.status} with {len(cells)} cell(s)"
                async with session.get(f"{config.router_url}/health", headers=logs) as r:
                    if r.status != 200:
                        last = f"log aggregator answered {r.status}"
                    elif len(cells) >= config.cells:
                        return
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(0.2)
    raise UpError(f"the box did not become ready within {timeout_s:.0f} s ({last})")


async def _cluster_id(endpoints: str) -> str:
    etcd = Etcd(endpoints)
    try:
        return await ensure_cluster_id(etcd)
    finally:
        await etcd.close()


async def run_up(config: UpConfig, *, announce: Callable[[str], None]) -> None:
    """Start the box, announce it, and run until SIGINT or SIGTERM; then stop everything."""
    check_config(config)
    await asyncio.to_thread(check_docker)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    lock = PidLock(config.data_dir / "lattice.pid")
    lock.acquire()
    supervisor = Supervisor()
    cluster_id: str | None = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        etcd = config.etcd
        if etcd is None:
            command = etcd_server.EtcdCommand.on_free_ports(config.data_dir / "etcd")
            try:
                await supervisor.start(ProcessSpec("etcd", command.argv()))
            except etcd_server.EtcdNotFound as exc:
                raise UpError(str(exc)) from exc
            etcd = command.endpoint
        await etcd_server.wait_until_ready(etcd)
        cluster_id = await _cluster_id(etcd)
        for spec in component_specs(config, etcd):
            await supervisor.start(spec)
        ready = asyncio.create_task(wait_until_ready(config))
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({ready, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if ready.done():
            ready.result()
            announce(
                f"lattice is up: ltc target {config.domain}:{config.router_port}  "
                f"(data in {config.data_dir}; Ctrl-C stops it)"
            )
        else:
            ready.cancel()
        await stopped
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        announce("lattice is stopping")
        await supervisor.stop()
        from lattice.cell import remove_cell_containers

        if cluster_id is not None:
            for cell_id in config.cell_ids:
                await asyncio.to_thread(remove_cell_containers, cluster_id, cell_id)
        lock.release()
        announce("lattice stopped")
