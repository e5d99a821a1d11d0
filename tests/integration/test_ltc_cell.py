"""ltc with a real brain and a real cell: waiting for RUNNING, crashes, timeouts, scaling.

Apps' containers run in the real Docker engine, published on 127.0.0.1; the cell fixture
removes every container its cell started. No router runs here, so the tests reach instances at
their published ports (what the router would do) rather than through route names.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result

from lattice.cli.exit_codes import ExitCode
from lattice.cli.ltc import cli
from tests.support_ltc import Brain, http_get, running_brain, running_cell

pytestmark = pytest.mark.integration

DOMAIN = "cell.localhost"




@pytest.fixture(scope="module")
def brain(
    module_etcd: str, tmp_path_factory: pytest.TempPathFactory, demo_image: str
) -> Iterator[Brain]:
    with running_brain(module_etcd, DOMAIN, tmp_path_factory.mktemp("brain")) as the_brain:
        yield the_brain


@pytest.fixture(scope="module")
def cell(module_etcd: str, brain: Brain, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[str]:
    with running_cell(module_etcd, brain, tmp_path_factory.mktemp("cell")) as cell_id:
        yield cell_id


def run(brain: Brain, *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"LATTICE_TARGET": brain.target,
                                                    "LTC_TIMEOUT": None})


def status(brain: Brain, app: str) -> dict:
    result = run(brain, "status", app, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_create_waits_until_every_instance_runs(brain: Brain, cell: str, demo_image: str) -> None:
    result = run(brain, "create", "up", demo_image, "-i", "2", "-t", "60s")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "Creating up with 2 instances..."
    assert lines[-3:] == [
        "Waiting for up: 2/2 running",
        "up is running: 2 instance(s).",
        f"  http://up.{DOMAIN}:{brain.port}",
    ]
    # ltc returned, so every instance is RUNNING now, and answers on its published port.
    instances = status(brain, "up")["instances"]
    assert [(i["index"], i["state"], i["cell_id"]) for i in instances] == [
        (0, "RUNNING", cell), (1, "RUNNING", cell),
    ]
    for instance in instances:
        mapping = instance["ports"][0]
        assert (instance["address"], mapping["container_port"]) == ("127.0.0.1", 8080)
        answer = http_get(mapping["host_port"], "/cgi-bin/index.cgi")
        assert answer is not None
        assert answer[0] == 200
        assert f"instance {instance['index']}" in answer[1].decode()
    text = run(brain, "status", "up").stdout
    assert "Instances:  2/2 running" in text
    row = next(line.split() for line in text.splitlines() if line.startswith("0 "))
    assert row[:3] == ["0", "RUNNING", "0"]
    assert row[4:7] == [cell, "127.0.0.1", f"8080->{instances[0]['ports'][0]['host_port']}"]

    scaled = run(brain, "scale", "up", "1")
    assert scaled.exit_code == 0, scaled.output
    assert [i["index"] for i in status(brain, "up")["instances"]] == [0]
    assert run(brain, "list").stdout.splitlines()[1].split()[:2] == ["up", "1/1"]
    assert run(brain, "rm", "up").exit_code == 0


def test_an_app_that_keeps_crashing_fails_with_its_reason(
    brain: Brain, cell: str, demo_image: str
) -> None:
    started = time.monotonic()
    result = run(brain, "create", "crashy", demo_image, "-t", "60s", "--",
                 "/bin/sh", "-c", "echo bye; exit 3")
    assert result.exit_code == ExitCode.COMMAND_FAILED, result.output
    assert "crashy keeps crashing" in result.stderr
    assert "instance 0: crashed 3 times" in result.stderr
    assert time.monotonic() - started < 50      # failed early, not at the timeout
    assert status(brain, "crashy")["instances"][0]["crash_count"] >= 3
    assert run(brain, "remove", "crashy").exit_code == 0


def test_an_instance_that_never_becomes_healthy_times_out(
    brain: Brain, cell: str, demo_image: str
) -> None:
    # The health check watches port 9999, where the demo app never listens.
    result = run(brain, "create", "hung", demo_image, "-p", "8080,9999", "-M", "9999",
                 "-t", "2s")
    assert result.exit_code == ExitCode.TIMEOUT, result.output
    assert "timed out after 2 s: 0/1 instances of hung running" in result.stderr
    assert status(brain, "hung")["instances"][0]["state"] == "CLAIMED"
    assert run(brain, "remove", "hung").exit_code == 0


def test_no_monitor_is_running_once_started(brain: Brain, cell: str, demo_image: str) -> None:
    result = run(brain, "create", "nomon", demo_image, "--no-monitor", "--no-routes",
                 "-t", "60s", "--", "/bin/sh", "-c", "exec sleep 600")
    assert result.exit_code == 0, result.output
    assert status(brain, "nomon")["instances"][0]["state"] == "RUNNING"
    assert run(brain, "remove", "nomon").exit_code == 0
