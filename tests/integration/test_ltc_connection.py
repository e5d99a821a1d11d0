"""ltc's session reaches the router's address for every box name, over HTTP and WebSocket,
with the real name in the Host header; and a refused flag sends nothing at all."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from click.testing import CliRunner

from lattice.cli.exit_codes import ExitCode
from lattice.cli.ltc import cli
from lattice.client.connection import connect
from lattice.client.errors import BadTarget, ProtocolError
from lattice.client.receptor import ReceptorClient
from lattice.client.session_transport import SessionTransport
from lattice.client.target import Target

pytestmark = pytest.mark.integration


@pytest.fixture
async def echo_server() -> AsyncIterator[tuple[int, list[str]]]:
    """A server on 127.0.0.1 that records the Host header of each request and WebSocket."""
    hosts: list[str] = []

    async def http_host(request: web.Request) -> web.Response:
        hosts.append(request.host)
        return web.json_response({"version": "test", "domain": "box.localhost"})

    async def ws_host(request: web.Request) -> web.WebSocketResponse:
        hosts.append(request.host)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(request.host)
        await ws.close()
        return ws

    app = web.Application()
    app.router.add_get("/v1/info", http_host)
    app.router.add_get("/ws", ws_host)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1], hosts
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("domain", ["box.localhost", "box.127.0.0.1.nip.io", "127-0-0-1.sslip.io"])
async def test_api_and_websocket_reach_the_router_with_the_real_host(
    echo_server: tuple[int, list[str]], domain: str
) -> None:
    port, hosts = echo_server
    target = Target(domain, port)
    async with connect(target) as connection:
        info = await connection.receptor.info()
        async with connection.session.ws_connect(target.doppler_url + "/ws") as ws:
            greeting = await ws.receive_str()
    assert info.version == "test"
    assert hosts == [f"receptor.{domain}:{port}", f"doppler.{domain}:{port}"]
    assert greeting == f"doppler.{domain}:{port}"


async def test_a_closed_port_is_a_bad_target() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]   # bound but not listening: connections are refused
        async with connect(Target("box.localhost", port)) as connection:
            with pytest.raises(BadTarget, match=r"cannot reach http://receptor\.box\.localhost"):
                await connection.receptor.info()


@pytest.fixture
async def not_a_lattice() -> AsyncIterator[int]:
    """Some other HTTP server: 404 in plain text everywhere, 200 text on /v1/info's sibling."""

    async def plain(request: web.Request) -> web.Response:
        return web.Response(text="hello, not json", status=200)

    app = web.Application()
    app.router.add_get("/v1/cells", plain)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def test_something_else_at_the_target_is_named_as_such(not_a_lattice: int) -> None:
    async with aiohttp.ClientSession() as session:
        client = ReceptorClient(SessionTransport(session), f"http://127.0.0.1:{not_a_lattice}")
        with pytest.raises(BadTarget, match="not a lattice"):
            await client.info()
        with pytest.raises(ProtocolError, match="non-JSON"):
            await client.cells()


async def test_ltc_target_does_not_save_a_target_that_is_not_a_lattice(
    not_a_lattice: int, tmp_path: Path
) -> None:
    config = tmp_path / "config.json"
    # ltc runs its own event loop, so it runs in a thread while this loop serves.
    result = await asyncio.to_thread(
        CliRunner().invoke, cli, ["target", f"box.localhost:{not_a_lattice}"],
        env={"LATTICE_CONFIG": str(config), "LATTICE_TARGET": None},
    )
    assert result.exit_code == ExitCode.BAD_TARGET, result.output
    assert "not a lattice" in result.stderr
    assert not config.exists()


class CountingListener:
    """A loopback listener that accepts, counts and at once closes every connection."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(8)
        self.server.settimeout(0.05)
        self.port: int = self.server.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.server.close()


@pytest.fixture
def listener() -> Iterator[CountingListener]:
    counting = CountingListener()
    try:
        yield counting
    finally:
        counting.close()


@pytest.mark.parametrize(
    "args",
    [["create", "web", "img", "-e", "BROKEN"], ["create", "web", "img", "-p", "99999"],
     ["scale", "web", "-3"], ["create", "web", "img", "-t", "never"]],
)
def test_refused_input_sends_nothing(listener: CountingListener, args: list[str]) -> None:
    result = CliRunner().invoke(cli, args, env={"LATTICE_TARGET": f"box.localhost:{listener.port}"})
    assert result.exit_code == ExitCode.INVALID_SYNTAX, result.output
    assert listener.accepted == 0


def test_the_listener_does_see_a_request_that_is_sent(listener: CountingListener) -> None:
    """The check above can fail: a valid command does connect to the same listener."""
    result = CliRunner().invoke(
        cli, ["create", "web", "img"], env={"LATTICE_TARGET": f"box.localhost:{listener.port}"}
    )
    assert result.exit_code == ExitCode.BAD_TARGET   # the connection is closed unanswered
    assert listener.accepted >= 1
