"""`ltc cells`, `visualize`, `version` and `test` against a real box of two cells."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from lattice import __version__
from tests.integration.box import Box, ltc, ltc_ok, running_box, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory, demo_image: str) -> Iterator[Box]:
    with running_box(tmp_path_factory.mktemp("ltccluster"), cells=2, ltc_timeout=180) as the_box:
        yield the_box


def test_cells_and_visualize_show_instances_per_cell(box: Box, demo_image: str) -> None:
    ltc_ok(box, "create", "seen", demo_image, "-i", "2", "-m", "64")
    try:
        table = ltc_ok(box, "cells").splitlines()
        assert [line.split()[0] for line in table[1:]] == ["cell-0", "cell-1"]
        assert all(line.split()[-1] == "1" for line in table[1:])   # one instance each
        cells = json.loads(ltc_ok(box, "cells", "--json"))
        assert {c["used"]["memory_mb"] for c in cells} == {64}
        assert all(c["free"]["memory_mb"] == c["capacity"]["memory_mb"] - 64 for c in cells)

        rows = ltc_ok(box, "visualize").splitlines()[1:]
        assert [row.split()[0] for row in rows] == ["cell-0", "cell-1"]
        assert all(row.count("\u25cf") == 1 for row in rows)
        data = json.loads(ltc_ok(box, "visualize", "--json"))["cells"]
        states = [i["state"] for c in data.values() for i in c["instances"]]
        assert states == ["RUNNING", "RUNNING"]
    finally:
        ltc_ok(box, "remove", "seen")


def test_visualize_refreshes_at_its_rate_until_interrupted(box: Box) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "lattice.cli.ltc", "visualize", "--rate", "1s", "--json"],
        env=box.ltc_env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    lines: list[str] = []
    assert process.stdout is not None
    stdout = process.stdout
    reader = threading.Thread(target=lambda: lines.extend(iter(stdout.readline, "")),
                              daemon=True)
    reader.start()
    try:
        wait_for(lambda: sum(1 for line in lines if line.startswith("{")) >= 2, 30,
                 "two refreshes")
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
        reader.join(timeout=10)
    assert process.returncode == 0, err


def test_version_prints_client_and_server(box: Box) -> None:
    out = ltc_ok(box, "version")
    assert f"Client: ltc {__version__}" in out
    assert f"Server: lattice {__version__}" in out
    assert json.loads(ltc_ok(box, "version", "--json")) == {"client": __version__,
                                                            "server": __version__}


def test_smoke_test_passes_on_a_live_box(box: Box, demo_image: str) -> None:
    result = ltc(box, "test", "--image", demo_image)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Smoke test passed" in result.stdout
    assert "[FAIL]" not in result.stdout
    assert result.stdout.count("[OK  ]") == 6
    assert box.api("GET", "/v1/desired_lrps") == (200, [])      # it cleaned up


def test_smoke_test_failure_exits_non_zero_with_a_report(box: Box) -> None:
    result = ltc(box, "test", "--image", "no-such-image:never", "-t", "20s")
    assert result.returncode == 14, result.stdout + result.stderr
    assert "smoke test failed" in result.stderr
    assert "[FAIL] create" in result.stderr
    assert box.api("GET", "/v1/desired_lrps") == (200, [])
