"""Starting the box's etcd when a port chosen for it was taken in the meantime (free_port()
cannot hold a port): a real etcd, a real socket holding the port."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lattice import etcd_server
from lattice.store import Etcd

pytestmark = pytest.mark.integration


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port something else is listening on."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield int(held.getsockname()[1])


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=10)


async def test_an_etcd_that_cannot_bind_is_reported_at_once(
    tmp_path: Path, taken_port: int
) -> None:
    command = etcd_server.EtcdCommand(tmp_path / "etcd", taken_port, etcd_server.free_port())
    process = etcd_server.start(command)
    try:
        started = time.monotonic()
        with pytest.raises(etcd_server.EtcdExited, match="exited"):
            await etcd_server.wait_until_ready(command.endpoint, timeout_s=20, process=process)
        # Told by the process's end, not by the 20 s deadline.
        assert time.monotonic() - started < 10
    finally:
        if process.poll() is None:
            _stop(process)


async def test_a_taken_port_is_replaced_by_another(
    tmp_path: Path, taken_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen: list[int] = []
    real_choice = etcd_server.EtcdCommand.on_free_ports.__func__  # type: ignore[attr-defined]

    def first_the_taken_port(
        cls: type[etcd_server.EtcdCommand], data_dir: Path
    ) -> etcd_server.EtcdCommand:
        command = (etcd_server.EtcdCommand(data_dir, taken_port, etcd_server.free_port())
                   if not chosen else real_choice(cls, data_dir))
        chosen.append(command.client_port)
        return command

    monkeypatch.setattr(etcd_server.EtcdCommand, "on_free_ports",
                        classmethod(first_the_taken_port))
    command, process = await etcd_server.start_on_free_ports(tmp_path / "etcd")
    try:
        assert chosen[0] == taken_port
        assert len(chosen) == 2
        assert command.client_port == chosen[1]
        etcd = Etcd(command.endpoint)
        try:
            await etcd.put("/lattice/test", b"answered")
            kv = await etcd.get("/lattice/test")
            assert kv is not None
            assert kv.value == b"answered"
        finally:
            await etcd.close()
    finally:
        _stop(process)
