"""The port check against real sockets and against Docker's userland proxy."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import docker
import pytest

from lattice.cell.healthcheck import port_is_open
from lattice.etcd_server import free_port
from tests.support_cell import wait_for

pytestmark = pytest.mark.integration

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def server(handler: Handler) -> AsyncIterator[int]:
    srv = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield srv.sockets[0].getsockname()[1]
    finally:
        srv.close()
        await srv.wait_closed()


async def keep_open(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()            # until the checker hangs up
    writer.close()


async def hang_up(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()                 # what docker-proxy does when nothing listens behind it


async def reset(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()


async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"220 hello\r\n")
    await writer.drain()
    await reader.read()
    writer.close()


@pytest.mark.parametrize(
    ("handler", "expected"), [(keep_open, True), (greet, True), (hang_up, False), (reset, False)]
)
async def test_port_check_on_local_servers(handler: Handler, expected: bool) -> None:
    async with server(handler) as port:
        assert await port_is_open("127.0.0.1", port) is expected


async def test_a_refused_connect_fails() -> None:
    assert await port_is_open("127.0.0.1", free_port()) is False


@pytest.fixture
def published(docker_client: docker.DockerClient, demo_image: str) -> Iterator[Callable[..., int]]:
    """Start a demo-image container with 8080 published on 127.0.0.1; give its host port."""
    created: list[str] = []

    def start(command: list[str] | None) -> int:
        container = docker_client.containers.run(
            demo_image, command, detach=True, init=True, environment={"PORT": "8080"},
            ports={"8080/tcp": ("127.0.0.1", None)}, labels={"lattice.test": "1"},
        )
        created.append(container.id)
        container.reload()
        return int(container.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"])

    yield start
    for container_id in created:
        docker_client.api.remove_container(container_id, force=True)


async def test_through_docker_proxy_a_port_nobody_listens_on_fails(
    published: Callable[..., int]
) -> None:
    port = published(["sleep", "3600"])
    # The connect itself succeeds (docker-proxy accepts): that alone must not pass.
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    assert await port_is_open("127.0.0.1", port) is False


async def test_through_docker_proxy_a_listening_app_passes(
    published: Callable[..., int]
) -> None:
    port = published(None)
    await wait_for(lambda: port_is_open("127.0.0.1", port), "the demo app listening")
