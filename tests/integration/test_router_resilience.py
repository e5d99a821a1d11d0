"""The router with the box's real parts: an etcd that goes away, and demo app containers."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from lattice import etcd_server
from lattice.models import ActualState
from lattice.store import Etcd
from router import RouterConfig, RouterServer
from tests.support_router import get, put_app, put_instance, wait_for

DOMAIN = "lattice.localhost"


class OwnEtcd:
    """An etcd this test may stop and start again, on the same data directory."""

    def __init__(self, command: etcd_server.EtcdCommand,
                 process: subprocess.Popen[bytes]) -> None:
        self.command = command
        self.process: subprocess.Popen[bytes] | None = process

    @classmethod
    async def first_start(cls, data_dir: Path) -> OwnEtcd:
        return cls(*await etcd_server.start_on_free_ports(data_dir))

    async def start(self) -> None:
        """Start again, on the same ports and data."""
        self.process = etcd_server.start(self.command)
        await etcd_server.wait_until_ready(self.command.endpoint, process=self.process)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


@pytest.fixture
async def own_etcd(tmp_path: Path) -> AsyncIterator[OwnEtcd]:
    server = await OwnEtcd.first_start(tmp_path / "etcd")
    try:
        yield server
    finally:
        server.stop()


async def test_the_router_serves_its_last_table_while_etcd_is_down(
    own_etcd: OwnEtcd, demo_containers: list[int]
) -> None:
    endpoint = own_etcd.command.endpoint
    etcd = Etcd(endpoint)
    host = f"web.{DOMAIN}"
    router = RouterServer(RouterConfig(etcd_endpoints=endpoint, port=0, shutdown_grace_s=2))
    try:
        await put_app(etcd, "web", [host])
        for index, port in enumerate(demo_containers):
            await put_instance(etcd, "web", index, port)
        await router.start()

        async def answers() -> bool:
            return (await get(router.port, host)).status == 200

        await wait_for(answers, what="the demo app to answer through the router")

        own_etcd.stop()
        await wait_for(lambda: not router.etcd_connected, what="the router to see etcd gone")
        for _ in range(4):
            response = await get(router.port, host)
            assert response.status == 200
            assert response.body.startswith(b"Hello from lattice-demo, instance ")

        await own_etcd.start()
        await wait_for(lambda: router.etcd_connected, what="the router to reconnect")
        await put_instance(etcd, "web", 0, demo_containers[0], state=ActualState.CRASHED)
        await put_instance(etcd, "web", 1, demo_containers[1], state=ActualState.CRASHED)

        async def unavailable() -> bool:
            return (await get(router.port, host)).status == 503

        await wait_for(unavailable, what="changes made after the outage to reach the router")
    finally:
        await router.stop()
        await etcd.close()


@pytest.fixture
def demo_containers(docker_client: Any, demo_image: str) -> Iterator[list[int]]:
    """Two demo app containers published on 127.0.0.1; yields their host ports by index."""
    containers = []
    try:
        for index in range(2):
            containers.append(docker_client.containers.run(
                demo_image,
                detach=True,
                environment={"PORT": "8080", "INSTANCE_INDEX": str(index)},
                ports={"8080/tcp": ("127.0.0.1", None)},
                labels={"lattice.test": "1"},
            ))
        ports = []
        for container in containers:
            container.reload()
            ports.append(int(container.ports["8080/tcp"][0]["HostPort"]))
        yield ports
    finally:
        for container in containers:
            container.remove(force=True)


async def test_demo_containers_are_balanced_through_the_router(
    etcd_endpoint: str, etcd: Etcd, demo_containers: list[int]
) -> None:
    host = f"demo.{DOMAIN}"
    router = RouterServer(RouterConfig(etcd_endpoints=etcd_endpoint, port=0, shutdown_grace_s=2))
    await router.start()
    try:
        await put_app(etcd, "demo", [host])
        for index, port in enumerate(demo_containers):
            await put_instance(etcd, "demo", index, port)

        async def both_answer() -> bool:
            bodies = {(await get(router.port, host)).body for _ in range(2)}
            return bodies == {
                b"Hello from lattice-demo, instance 0\n",
                b"Hello from lattice-demo, instance 1\n",
            }

        await wait_for(both_answer, what="both instances to answer in turn")
    finally:
        await router.stop()
