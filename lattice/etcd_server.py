"""Spawning a local etcd from the `etcd` binary, for `lattice up` and for the tests."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from lattice.store.errors import StoreUnavailable
from lattice.store.etcd import Etcd


class EtcdNotFound(Exception):
    """The etcd binary is not installed."""


class EtcdExited(StoreUnavailable):
    """The etcd process ended before it answered (its log, beside its data, says why)."""


# New ports for an etcd whose chosen ones were taken meanwhile: free_port() cannot hold a port,
# and the kernel hands the same range to outgoing connections.
START_ATTEMPTS = 3
# How long one readiness probe may take before the process is looked at again.
PROBE_TIMEOUT_S = 1.0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class EtcdCommand:
    data_dir: Path
    client_port: int
    peer_port: int
    host: str = "127.0.0.1"

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.client_port}"

    def argv(self) -> list[str]:
        binary = shutil.which("etcd")
        if binary is None:
            raise EtcdNotFound("etcd is not installed (Debian: apt-get install etcd-server)")
        peer = f"http://{self.host}:{self.peer_port}"
        return [
            binary,
            "--name", "lattice",
            "--data-dir", str(self.data_dir),
            "--listen-client-urls", self.endpoint,
            "--advertise-client-urls", self.endpoint,
            "--listen-peer-urls", peer,
            "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"lattice={peer}",
            "--log-level", "error",
            # Container metrics put a sample per instance every few seconds: keep one hour of
            # history, not all of it (informers relist if their watch ever falls behind).
            "--auto-compaction-mode", "periodic",
            "--auto-compaction-retention", "1h",
        ]

    @classmethod
    def on_free_ports(cls, data_dir: Path) -> EtcdCommand:
        return cls(data_dir=data_dir, client_port=free_port(), peer_port=free_port())


async def wait_until_ready(
    endpoint: str, timeout_s: float = 20.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll etcd until it answers a read, or raise StoreUnavailable; EtcdExited at once if
    `process` (the etcd serving `endpoint`) has ended."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process is not None and process.poll() is not None:
            raise EtcdExited(f"etcd for {endpoint} exited ({process.returncode}) before it "
                             "answered")
        etcd = Etcd(endpoint)
        try:
            # Each try bounded, so that a process that dies meanwhile is noticed within a
            # second rather than after the client's own connect timeout.
            await asyncio.wait_for(etcd.get("/lattice/ping"), PROBE_TIMEOUT_S)
            return
        except (StoreUnavailable, TimeoutError) as exc:
            if time.monotonic() > deadline:
                raise StoreUnavailable(
                    f"etcd at {endpoint} did not answer in {timeout_s} s: {exc}"
                ) from exc
            await asyncio.sleep(0.1)
        finally:
            await etcd.close()


def start(command: EtcdCommand) -> subprocess.Popen[bytes]:
    """Start etcd with its own output in `<data_dir>.log`, beside its data."""
    command.data_dir.mkdir(parents=True, exist_ok=True)
    log_path = command.data_dir.with_name(command.data_dir.name + ".log")
    with open(log_path, "ab") as log_file:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(command.argv(), stdout=log_file, stderr=subprocess.STDOUT)


async def start_on_free_ports(data_dir: Path) -> tuple[EtcdCommand, subprocess.Popen[bytes]]:
    """A new etcd on free loopback ports with its data in `data_dir`, answering reads; started
    again on other ports (and a fresh `data_dir`) when it could not bind the ones chosen, up to
    START_ATTEMPTS times. The caller stops the process."""
    attempt = 1
    while True:
        command = EtcdCommand.on_free_ports(data_dir)
        process = start(command)
        try:
            await wait_until_ready(command.endpoint, process=process)
            return command, process
        except EtcdExited:
            if attempt >= START_ATTEMPTS:
                raise
            # What the failed start wrote names the ports it was given.
            shutil.rmtree(data_dir, ignore_errors=True)
            attempt += 1
        except BaseException:
            process.terminate()
            process.wait()
            raise
