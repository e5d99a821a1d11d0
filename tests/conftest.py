"""Fixtures shared by every test: a real etcd per test and the locally built demo image.

Nothing here fakes a part of the box. Each fixture removes what it created.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from lattice import etcd_server
from lattice.store import Etcd

# testcontainers cannot pull its Ryuk reaper here, and must publish on loopback only.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
os.environ.setdefault("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")


def pytest_configure(config: pytest.Config) -> None:
    # Registered here because pyproject.toml is shared; CI runs these, `-m "not vagrant"` skips.
    config.addinivalue_line(
        "markers", "vagrant: boots the box with `vagrant up --provider=docker` (minutes)"
    )


@contextmanager
def running_etcd(data_dir: Path) -> Iterator[str]:
    """A fresh etcd on free loopback ports with its data in `data_dir`; stopped on exit."""
    if shutil.which("etcd") is None:
        pytest.fail("etcd is not installed: run `make deps` (Debian: apt-get install etcd-server)")
    command, process = asyncio.run(etcd_server.start_on_free_ports(data_dir))
    try:
        yield command.endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def etcd_endpoint(tmp_path: Path) -> Iterator[str]:
    """A fresh etcd for one test."""
    with running_etcd(tmp_path / "etcd") as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def module_etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One etcd for a whole module, for tests that share a brain and use distinct app names."""
    with running_etcd(tmp_path_factory.mktemp("etcd") / "data") as endpoint:
        yield endpoint


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
