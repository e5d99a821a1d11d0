"""Fixtures shared by every test: a real etcd per test and the locally built demo image.

Nothing here fakes a part of the box. Each fixture removes what it created.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from lattice import etcd_server
from lattice.store import Etcd

# testcontainers cannot pull its Ryuk reaper here, and must publish on loopback only.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
os.environ.setdefault("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")


@pytest.fixture
def etcd_endpoint(tmp_path: Path) -> Iterator[str]:
    """A fresh etcd on free loopback ports, with its data in the test's tmp dir."""
    if shutil.which("etcd") is None:
        pytest.fail("etcd is not installed: run `make deps` (Debian: apt-get install etcd-server)")
    command = etcd_server.EtcdCommand.on_free_ports(tmp_path / "etcd")
    process = etcd_server.start(command)
    try:
        import asyncio

        asyncio.run(etcd_server.wait_until_ready(command.endpoint))
        yield command.endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
async def etcd(etcd_endpoint: str) -> AsyncIterator[Etcd]:
    client = Etcd(etcd_endpoint)
    yield client
    await client.close()


@pytest.fixture(scope="session")
def docker_client() -> Iterator[object]:
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure here means the same: no engine
        pytest.fail(f"no Docker engine answers ({exc}); run `make deps` to install and start one")
    yield client
    client.close()


@pytest.fixture(scope="session")
def demo_image(docker_client: object) -> str:
    from lattice.images import build_demo_image

    return build_demo_image()
