"""`ltc logs` against the real log aggregator, fed by a real cell running a real container.

No router runs here: `ltc logs` is pointed at the aggregator's own port (it does not look at
the Host header), and `ltc create` at the brain's.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from lattice import etcd_server
from lattice.cli.ltc import cli
from tests.support_ltc import Brain, running_brain, running_cell, running_logagg, wait_for

pytestmark = pytest.mark.integration

DOMAIN = "logs.localhost"
REPO = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^\d\d/\d\d \d\d:\d\d:\d\d\.\d\d \[APP\|0\] tick \d+$")




@pytest.fixture(scope="module")
def box(
    module_etcd: str, tmp_path_factory: pytest.TempPathFactory, demo_image: str
) -> Iterator[tuple[Brain, int]]:
    logs_dir = tmp_path_factory.mktemp("box")
    with running_logagg(module_etcd, DOMAIN, logs_dir) as logagg_port, \
            running_brain(module_etcd, DOMAIN, logs_dir) as brain, \
            running_cell(module_etcd, brain, logs_dir):
        yield brain, logagg_port


class LtcLogs:
    """`ltc logs APP` as a user runs it: a process whose lines are collected as they come."""

    def __init__(self, app: str, target: str) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lattice.cli.ltc", "logs", app], cwd=REPO,
            env={**os.environ, "LATTICE_TARGET": target}, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self._reader = threading.Thread(target=self._read)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def stop(self) -> tuple[int, str]:
        """Ctrl-C, as a user ends it; the exit code and what it wrote to stderr."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        finally:
            self._reader.join()
        assert self.process.stderr is not None
        assert self.process.stdout is not None
        stderr = self.process.stderr.read()
        self.process.stderr.close()
        self.process.stdout.close()
        return code, stderr


@pytest.fixture
def tail() -> Iterator[list[LtcLogs]]:
    started: list[LtcLogs] = []
    yield started
    for logs in started:
        logs.stop()


def test_ltc_logs_streams_an_apps_lines_and_ctrl_c_ends_it_quietly(
    box: tuple[Brain, int], demo_image: str, tail: list[LtcLogs]
) -> None:
    brain, logagg_port = box
    created = CliRunner().invoke(
        cli,
        ["create", "ticker", demo_image, "--no-monitor", "--no-routes", "-t", "60s", "--",
         "/bin/sh", "-c", "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done"],
        env={"LATTICE_TARGET": brain.target},
    )
    assert created.exit_code == 0, created.output
    logs = LtcLogs("ticker", f"{DOMAIN}:{logagg_port}")
    tail.append(logs)
    wait_for(lambda: len([ln for ln in logs.lines if LINE.match(ln)]) >= 3, 30,
             "three tick lines from `ltc logs`")
    tail.remove(logs)
    code, stderr = logs.stop()
    assert (code, stderr) == (0, "")
    assert CliRunner().invoke(cli, ["rm", "ticker"],
                              env={"LATTICE_TARGET": brain.target}).exit_code == 0


def test_ltc_logs_without_an_aggregator_fails_clearly(tmp_path: Path) -> None:
    port = etcd_server.free_port()      # nothing listens there
    result = CliRunner().invoke(cli, ["logs", "web"],
                                env={"LATTICE_TARGET": f"{DOMAIN}:{port}"})
    assert result.exit_code == 14, result.output
    assert f"doppler.{DOMAIN}:{port}" in result.stderr
