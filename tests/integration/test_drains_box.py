"""Syslog drains end to end on a real `lattice up`: a container's lines reach a TCP listener on
127.0.0.1 as RFC 5424; the URL's credentials show up nowhere; update and remove stop the drain;
bad URLs are a 400 naming each one and a non-zero exit from ltc."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from logagg.drain_format import split_frames
from tests.integration.box import Box, ltc, ltc_ok, running_box, wait_for
from tests.support_drains import SyslogMessage

pytestmark = pytest.mark.integration

SECRET = "pa55-drain-secret"


class ThreadedListener:
    """A syslog TCP listener in a thread (the box's tests are synchronous)."""

    def __init__(self) -> None:
        self.messages: list[SyslogMessage] = []
        self.open_connections = 0
        listener = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                listener.open_connections += 1
                pending = b""
                try:
                    while chunk := self.request.recv(65536):
                        frames, pending = split_frames(pending + chunk)
                        listener.messages.extend(SyslogMessage.parse(f) for f in frames)
                except OSError:
                    pass
                finally:
                    listener.open_connections -= 1

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(10)


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory, demo_image: str) -> Iterator[Box]:
    with running_box(tmp_path_factory.mktemp("drainbox")) as the_box:
        yield the_box


@pytest.fixture
def listener() -> Iterator[ThreadedListener]:
    server = ThreadedListener()
    yield server
    server.close()


def test_a_container_s_lines_reach_the_drain_and_credentials_stay_hidden(
        box: Box, demo_image: str, listener: ThreadedListener) -> None:
    url = f"tcp://drain:{SECRET}@127.0.0.1:{listener.port}"
    try:
        ltc_ok(box, "create", "drained", demo_image, "--no-monitor", "--no-routes",
               "--syslog-drain", url, "--", "sh", "-c",
               "i=0; while true; do echo tick $i; echo oops $i >&2; i=$((i+1)); sleep 0.2; done")

        def ticks() -> list[SyslogMessage] | None:
            found = [m for m in listener.messages if m.msg.startswith("tick ")]
            return found if len(found) >= 3 else None

        found = wait_for(ticks, 60, "three tick lines at the drain")
        assert {(m.pri, m.hostname, m.app_name, m.procid) for m in found} == {
            (14, "drained", "drained", "[APP/0]")}
        assert any(m.pri == 11 and m.msg.startswith("oops ") for m in listener.messages)
        assert any(m.procid == "[CELL/0]" for m in listener.messages)

        status = ltc_ok(box, "status", "drained")
        [line] = [x for x in status.splitlines() if x.startswith("Syslog drains:")]
        assert line.split() == ["Syslog", "drains:", f"tcp://***@127.0.0.1:{listener.port}"]
        as_json = ltc_ok(box, "status", "drained", "--json")
        assert SECRET not in status + as_json

        ltc_ok(box, "update", "drained", "--no-syslog-drains")
        wait_for(lambda: listener.open_connections == 0 or None, 30,
                 "the drain's connection to close after the update")
        assert "Syslog drains" not in ltc_ok(box, "status", "drained")
    finally:
        ltc(box, "rm", "drained")
    assert SECRET not in box.logs()


def test_bad_drain_urls_are_refused_and_each_is_named(box: Box, demo_image: str) -> None:
    status, body = box.api("POST", "/v1/desired_lrps", {
        "process_guid": "baddrain", "image": demo_image,
        "syslog_drains": ["https://u:hidden@h.example.com:443", "tcp://h.example.com"],
    })
    assert status == 400
    fields: list[dict[str, Any]] = body["error"]["fields"]
    assert [f["field"] for f in fields] == ["syslog_drains[0]", "syslog_drains[1]"]
    assert "hidden" not in str(body)
    result = ltc(box, "create", "baddrain", demo_image, "--syslog-drain", "udp://h:514")
    assert result.returncode != 0
    assert "syslog-drain" in result.stderr
    assert "scheme must be" in result.stderr
