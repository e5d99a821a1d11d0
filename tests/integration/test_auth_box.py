"""A box started with credentials: 401 without them, `ltc target` asks for them and keeps them,
every ltc request (API and log WebSocket) sends them, and they never reach a log line."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from lattice.auth import Credentials
from tests.integration.box import Box, ltc, running_box, wait_for

pytestmark = pytest.mark.integration

USERNAME = "admin"
PASSWORD = "s3cret-Pa55-word"
CREDENTIALS = Credentials(USERNAME, PASSWORD)


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory, demo_image: str) -> Iterator[Box]:
    # Not targeted: the tests target it themselves, as a user with the credentials would.
    with running_box(tmp_path_factory.mktemp("authbox"), credentials=CREDENTIALS,
                     target=False) as the_box:
        yield the_box


def test_api_and_logs_refuse_requests_without_credentials(box: Box) -> None:
    assert box.api("GET", "/v1/desired_lrps")[0] == 401
    assert box.api("GET", "/v1/info")[0] == 401
    status, body = box.request(f"doppler.{box.domain}", path="/apps/web/recentlogs")
    assert status == 401, body
    wrong = Box(box.data_dir, domain=box.domain, router_port=box.router_port,
                authorization=Credentials(USERNAME, "wrong").header())
    assert wrong.api("GET", "/v1/desired_lrps")[0] == 401
    assert box.api("GET", "/health")[0] == 200          # health checks stay open
    right = Box(box.data_dir, domain=box.domain, router_port=box.router_port,
                authorization=CREDENTIALS.header())
    assert right.api("GET", "/v1/desired_lrps") == (200, [])
    status, _ = right.request(f"doppler.{box.domain}", path="/apps/web/recentlogs")
    assert status == 200


def test_ltc_target_without_a_terminal_needs_username(box: Box) -> None:
    result = ltc(box, "target", f"{box.domain}:{box.router_port}")
    assert result.returncode == 10, result.stderr
    assert "--username" in result.stderr
    result = ltc(box, "target", f"{box.domain}:{box.router_port}", "--username", USERNAME,
                 stdin="wrong\n")
    assert result.returncode == 10, result.stderr
    assert "refused" in result.stderr
    assert not (box.data_dir / "ltc.json").exists()      # nothing saved on failure


def test_ltc_with_credentials_creates_reads_logs_and_keeps_them_private(
    box: Box, demo_image: str
) -> None:
    result = ltc(box, "target", f"{box.domain}:{box.router_port}", "--username", USERNAME,
                 stdin=PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    config = box.data_dir / "ltc.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert json.loads(config.read_text())["username"] == USERNAME
    assert PASSWORD not in result.stdout + result.stderr

    # The log WebSocket carries the credentials too: a marked line printed by the app arrives.
    tail = subprocess.Popen(
        [sys.executable, "-m", "lattice.cli.ltc", "logs", "authed"], env=box.ltc_env,
        text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.extend(iter(tail.stdout.readline, "")) if tail.stdout else None,
        daemon=True,
    )
    reader.start()
    try:
        # The app prints its marker once, at start: `ltc logs` must have attached before. (It
        # starts as a process of its own, and a create became quick enough to win that race.)
        wait_for(lambda: any("subscriber-connected" in line and "app_id=authed" in line
                             for line in box.logs().splitlines()), 30,
                 "`ltc logs` to attach to the log aggregator")
        created = ltc(box, "create", "authed", demo_image, "--", "sh", "-c",
                      "echo auth-marker; exec httpd -f -p 8080 -h /www")
        assert created.returncode == 0, created.stderr
        status = ltc(box, "status", "authed")
        assert status.returncode == 0, status.stderr
        assert "RUNNING" in status.stdout
        wait_for(lambda: any("auth-marker" in line for line in lines), 30,
                 "the app's marked line through `ltc logs`")
    finally:
        tail.terminate()
        tail.communicate(timeout=10)
        reader.join(timeout=10)
        ltc(box, "remove", "authed")
    assert PASSWORD not in box.logs()
    assert CREDENTIALS.header().split()[1] not in box.logs()


def test_listen_off_loopback_refused_without_credentials(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lattice.cli.server", "up", "--data-dir", str(tmp_path),
         "--listen", "0.0.0.0"],
        env={k: v for k, v in Box(tmp_path).ltc_env.items()
             if k not in ("LATTICE_USERNAME", "LATTICE_PASSWORD")},
        text=True, capture_output=True, timeout=60, check=False,
    )
    assert result.returncode == 1
    assert "needs credentials" in result.stderr
    assert not (tmp_path / "lattice.pid").exists()
