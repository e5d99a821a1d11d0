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


async def wait_until_ready(endpoint: str, timeout_s: float = 20.0) -> None:
    """Poll etcd until it answers a read, or raise StoreUnavailable."""
    deadline = time.monotonic() + timeout_s
    while True:
        etcd = Etcd(endpoint)
        try:
            await etcd.get("/lattice/ping")
            return
        except StoreUnavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
        finally:
            await etcd.close()


def start(command: EtcdCommand) -> subprocess.Popen[bytes]:
    """Start etcd with its own output in `<data_dir>.log`, beside its data."""
    command.data_dir.mkdir(parents=True, exist_ok=True)
    log_path = command.data_dir.with_name(command.data_dir.name + ".log")
    with open(log_path, "ab") as log_file:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(command.argv(), stdout=log_file, stderr=subprocess.STDOUT)
