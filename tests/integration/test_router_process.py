"""`lattice router` as a real process: 1 GB each way with bounded memory, and --workers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from lattice.etcd_server import free_port
from lattice.store import Etcd
from tests.support_router import get, put_app, put_instance, run_backend, wait_for

DOMAIN = "lattice.localhost"
GIB = 1 << 30
BLOCK = os.urandom(1 << 20)
MAX_ROUTER_RSS_KB = 200 * 1024


@contextlib.contextmanager
def router_process(etcd_endpoint: str, port: int, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "lattice.cli.server", "router", "--etcd", etcd_endpoint,
         "--port", str(port), *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for {pid}")


@contextlib.asynccontextmanager
async def streaming_backend() -> AsyncIterator[int]:
    """GET: 1 GiB of a repeated random block, sized. POST: reads the body, answers its size.
    Neither side holds more than one block, so only the router's memory is in question."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            head = await reader.readuntil(b"\r\n\r\n")
            if head.startswith(b"GET"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % GIB)
                for _ in range(GIB // len(BLOCK)):
                    writer.write(BLOCK)
                    await writer.drain()
            else:
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                received = 0
                while received < length:
                    received += len(await reader.read(1 << 20) or b"")
                body = str(received).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(body), body))
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def download(port: int, host: str) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET /big HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        received = 0
        while received < GIB:
            data = await reader.read(1 << 20)
            if not data:
                break
            received += len(data)
        return received
    finally:
        writer.close()
        await writer.wait_closed()


async def upload(port: int, host: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"POST /up HTTP/1.1\r\nHost: {host}\r\nContent-Length: {GIB}\r\n\r\n"
                     .encode())
        for _ in range(GIB // len(BLOCK)):
            writer.write(BLOCK)
            await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        return await reader.read(100)
    finally:
        writer.close()
        await writer.wait_closed()


async def test_a_gigabyte_each_way_with_bounded_router_memory(
    etcd_endpoint: str, etcd: Etcd
) -> None:
    host = f"big.{DOMAIN}"
    port = free_port()
    async with streaming_backend() as backend_port:
        await put_app(etcd, "big", [host])
        await put_instance(etcd, "big", 0, backend_port)
        with router_process(etcd_endpoint, port) as router:

            async def routed() -> bool:
                with contextlib.suppress(OSError):
                    return (await get(port, host, "/nothing-posted")).status != 404
                return False

            await wait_for(routed, within=30, what="the router to route the app")
            assert await download(port, host) == GIB
            assert await upload(port, host) == str(GIB).encode()
            peak = peak_rss_kb(router.pid)
            assert peak < MAX_ROUTER_RSS_KB, f"router peak RSS {peak} kB"


async def test_workers_share_the_port_and_stop_together(
    etcd_endpoint: str, etcd: Etcd
) -> None:
    host = f"w.{DOMAIN}"
    port, status_port = free_port(), free_port()
    async with contextlib.asynccontextmanager(run_backend)("b0") as backend:
        await put_app(etcd, "w", [host])
        await put_instance(etcd, "w", 0, backend.port)
        with router_process(etcd_endpoint, port, "--workers", "2",
                            "--status-port", str(status_port)) as parent:
            children: list[int] = []

            def both_listening() -> bool:
                nonlocal children
                children = _children(parent.pid)
                return len(children) == 2 and all(_listens(pid, port) for pid in children)

            await wait_for(both_listening, within=30, what="two workers listening on the port")
            await wait_for(lambda: sum(_listens(pid, status_port) for pid in children) == 1,
                           within=30, what="worker 0's status port")

            async def routed() -> bool:
                return (await get(port, host)).status == 200

            await wait_for(routed, within=30, what="the app through the workers")
            for _ in range(20):
                assert (await get(port, host)).status == 200
            parent.send_signal(signal.SIGTERM)
            assert parent.wait(30) == 0
            for pid in children:
                assert _gone(pid)


async def test_a_dead_worker_stops_the_group_with_an_error(etcd_endpoint: str) -> None:
    port = free_port()
    with router_process(etcd_endpoint, port, "--workers", "2") as parent:
        await wait_for(lambda: len(_children(parent.pid)) == 2 and all(
            _listens(pid, port) for pid in _children(parent.pid)), within=30,
            what="two workers")
        os.kill(_children(parent.pid)[0], signal.SIGKILL)
        assert parent.wait(30) != 0


def test_several_workers_need_a_fixed_port() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lattice.cli.server", "router", "--etcd", "http://127.0.0.1:1",
         "--port", "0", "--workers", "2"], capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    assert "several workers need a fixed port" in done.stderr


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _listens(pid: int, port: int) -> bool:
    """True if `pid` holds a socket listening on `port` (via /proc/net/tcp inodes)."""
    inodes = set()
    with contextlib.suppress(FileNotFoundError, PermissionError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(FileNotFoundError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port and fields[9] in inodes:
            return True
    return False


def _gone(pid: int) -> bool:
    with contextlib.suppress(FileNotFoundError):
        return "State:\tZ" in Path(f"/proc/{pid}/status").read_text()
    return True

