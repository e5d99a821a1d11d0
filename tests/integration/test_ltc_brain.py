"""ltc against the real brain API (real etcd, real Docker engine for image checks).

No cell runs here, so instances are never RUNNING: what is tested is everything up to that
point, and the failure ltc must report when no cell can take an instance (PlacementError).
The path to RUNNING through a router and a cell is the end-to-end suite's (tests/integration/
test_box.py). ltc reaches the brain directly: the brain does not look at the Host header.

One etcd and one brain serve the module (starting them takes seconds); each test uses its own
app names.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from lattice.cli.exit_codes import ExitCode
from lattice.cli.ltc import cli
from tests.support_ltc import Brain, running_brain, wait_for

pytestmark = pytest.mark.integration

DOMAIN = "ltc.localhost"




@pytest.fixture(scope="module")
def brain(
    module_etcd: str, tmp_path_factory: pytest.TempPathFactory, demo_image: str
) -> Iterator[Brain]:
    with running_brain(module_etcd, DOMAIN, tmp_path_factory.mktemp("brain")) as the_brain:
        yield the_brain


@pytest.fixture
def config(tmp_path: Path, brain: Brain) -> Path:
    """A config file targeting the brain, written by `ltc target` itself."""
    path = tmp_path / "ltc" / "config.json"
    result = run(path, "target", brain.target)
    assert result.exit_code == 0, result.output
    return path


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"LATTICE_CONFIG": str(config),
                                                    "LATTICE_TARGET": None, "LTC_TIMEOUT": None})


def test_target_checks_the_box_and_saves_it_privately(tmp_path: Path, brain: Brain) -> None:
    path = tmp_path / "fresh" / "config.json"
    result = run(path, "target", brain.target)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Target set to {brain.target} (lattice ")
    assert json.loads(path.read_text()) == {"domain": DOMAIN, "port": brain.port}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert run(path, "target").stdout == f"Target: {brain.target}\n"


def test_target_notes_a_box_that_calls_its_domain_otherwise(tmp_path: Path, brain: Brain) -> None:
    result = run(tmp_path / "c.json", "target", f"other.localhost:{brain.port}")
    assert result.exit_code == 0, result.output
    assert f"the box calls its domain '{DOMAIN}'" in result.stdout


def test_create_without_cells_is_a_placement_error(config: Path, demo_image: str) -> None:
    result = run(config, "create", "nocell", demo_image, "-i", "2", "-t", "30s")
    assert result.exit_code == ExitCode.PLACEMENT_ERROR, result.output
    assert "Creating nocell with 2 instances..." in result.stdout
    assert "Waiting for nocell: 0/2 running" in result.stdout
    assert "nocell could not be placed" in result.stderr
    assert "instance 0: no cells available" in result.stderr

    # The app stays, as in Lattice: status and list show why nothing runs.
    status = run(config, "status", "nocell")
    assert status.exit_code == 0, status.output
    assert "Instances:  0/2 running" in status.stdout
    assert f"Routes:     nocell.{DOMAIN} => 8080" in status.stdout
    assert "placement error: no cells available" in status.stdout
    data = json.loads(run(config, "status", "nocell", "--json").stdout)
    assert data["process_guid"] == "nocell"
    assert data["ports"] == [8080]        # the demo image's EXPOSEd port, chosen by the API
    assert [(i["index"], i["state"], i["placement_error"]) for i in data["instances"]] == [
        (0, "UNCLAIMED", "no cells available"), (1, "UNCLAIMED", "no cells available"),
    ]
    listed = json.loads(run(config, "list", "--json").stdout)
    mine = next(app for app in listed if app["process_guid"] == "nocell")
    assert (mine["instances"], mine["running_instances"]) == (2, 0)
    assert any(line.split()[:4] == ["nocell", "0/2", "128", "MB"]
               for line in run(config, "list").stdout.splitlines())


def test_an_app_of_more_instances_than_one_etcd_transaction(
    config: Path, demo_image: str
) -> None:
    # etcd takes 128 operations per transaction; this create once answered 500.
    result = run(config, "create", "wide", demo_image, "-i", "300", "-t", "30s")
    assert result.exit_code == ExitCode.PLACEMENT_ERROR, result.output
    assert "Creating wide with 300 instances..." in result.stdout
    data = json.loads(run(config, "status", "wide", "--json").stdout)
    assert sorted(i["index"] for i in data["instances"]) == list(range(300))
    assert run(config, "remove", "wide").stdout == "Removed wide.\n"
    names = {app["process_guid"] for app in json.loads(run(config, "list", "--json").stdout)}
    assert "wide" not in names


def test_flags_reach_the_api(config: Path, demo_image: str) -> None:
    result = run(config, "create", "flags", demo_image, "-i", "0", "-m", "64", "-c", "50",
                 "-p", "8080,9090", "-e", "GREETING=hi there", "-M", "9090",
                 "-R", "flags", "-R", "admin.example.com:9090", "--", "/bin/sh", "-c", "exit 0")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-3:] == [
        "flags is running: 0 instance(s).",
        f"  http://flags.{DOMAIN}:{config_port(config)}",
        f"  http://admin.example.com:{config_port(config)}",
    ]
    data = json.loads(run(config, "status", "flags", "--json").stdout)
    assert {k: data[k] for k in ("memory_mb", "cpu_weight", "ports", "command", "args")} == {
        "memory_mb": 64, "cpu_weight": 50, "ports": [8080, 9090], "command": ["/bin/sh"],
        "args": ["-c", "exit 0"],
    }
    assert data["env"] == [{"name": "GREETING", "value": "hi there"}]
    assert data["monitor"] == {"port": 9090}
    assert data["routes"] == [
        {"hostnames": [f"flags.{DOMAIN}"], "port": 8080},
        {"hostnames": ["admin.example.com"], "port": 9090},
    ]
    assert data["instances"] == []


def config_port(config: Path) -> int:
    return int(json.loads(config.read_text())["port"])


def test_no_routes_and_no_monitor(config: Path, demo_image: str) -> None:
    result = run(config, "create", "quiet", demo_image, "-i", "0", "--no-routes", "--no-monitor")
    assert result.exit_code == 0, result.output
    assert "(no routes)" in result.stdout
    data = json.loads(run(config, "status", "quiet", "--json").stdout)
    assert (data["routes"], data["monitor"]) == ([], {"port": None})


def test_a_missing_image_is_a_docker_error_and_creates_nothing(config: Path) -> None:
    result = run(config, "create", "ghost", "lattice/no-such-image:never")
    assert result.exit_code == ExitCode.BAD_DOCKER, result.output
    assert "'lattice/no-such-image:never' not found" in result.stderr
    assert run(config, "status", "ghost").exit_code == ExitCode.COMMAND_FAILED


def test_every_field_the_api_refuses_is_printed(config: Path, demo_image: str) -> None:
    result = run(config, "create", "greedy", demo_image, "-R", "receptor", "-R", "doppler:8080")
    assert result.exit_code == ExitCode.COMMAND_FAILED, result.output
    assert "the API refused the request (400 InvalidRequest)" in result.stderr
    assert f"routes[0].hostnames: receptor.{DOMAIN} is reserved by the box" in result.stderr
    assert f"routes[1].hostnames: doppler.{DOMAIN} is reserved by the box" in result.stderr


def test_another_apps_route_is_refused_unless_both_share_it(
    config: Path, demo_image: str
) -> None:
    assert run(config, "create", "blue", demo_image, "-i", "0", "-R", "shop").exit_code == 0
    result = run(config, "create", "green", demo_image, "-i", "0", "-R", "shop",
                 "--share-routes")
    assert result.exit_code == ExitCode.COMMAND_FAILED, result.output
    assert f"shop.{DOMAIN} is already routed to app blue" in result.stderr
    assert run(config, "status", "green").exit_code == ExitCode.COMMAND_FAILED  # nothing made

    # blue opts in (its routes kept as they are), then green may join.
    result = run(config, "update", "blue", "--share-routes")
    assert result.exit_code == 0, result.output
    blue = json.loads(run(config, "status", "blue", "--json").stdout)
    assert blue["routes"] == [{"hostnames": [f"shop.{DOMAIN}"], "port": 8080, "shared": True}]
    result = run(config, "create", "green", demo_image, "-i", "0", "-R", "shop",
                 "--share-routes")
    assert result.exit_code == 0, result.output

    # blue may stop sharing only once no other app routes the host: green leaves first.
    result = run(config, "update", "blue", "--no-share-routes")
    assert result.exit_code == ExitCode.COMMAND_FAILED, result.output
    assert f"shop.{DOMAIN} is already routed to app green" in result.stderr
    assert run(config, "update", "green", "--no-routes").exit_code == 0
    assert run(config, "update", "blue", "--no-share-routes").exit_code == 0
    result = run(config, "create", "red", demo_image, "-i", "0", "-R", "shop", "--share-routes")
    assert result.exit_code == ExitCode.COMMAND_FAILED, result.output
    assert "both apps must share their routes" in result.stderr
    assert run(config, "remove", "blue", "green").exit_code == 0


def test_a_name_taken_twice(config: Path, demo_image: str) -> None:
    assert run(config, "create", "twice", demo_image, "-i", "0").exit_code == 0
    result = run(config, "create", "twice", demo_image, "-i", "0")
    assert result.exit_code == ExitCode.COMMAND_FAILED
    assert "already exists" in result.stderr


def test_scale_waits_and_reports_placement_errors(config: Path, demo_image: str) -> None:
    assert run(config, "create", "scaly", demo_image, "-i", "0").exit_code == 0
    result = run(config, "scale", "scaly", "2")
    assert result.exit_code == ExitCode.PLACEMENT_ERROR, result.output
    assert "scaly could not be placed" in result.stderr
    # Back to 0: done once the brain has removed the two unplaced instances.
    result = run(config, "scale", "scaly", "0", "-t", "20s")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "scaly is scaled to 0 running instance(s)."
    assert json.loads(run(config, "status", "scaly", "--json").stdout)["instances"] == []


def test_remove_and_rm(config: Path, demo_image: str) -> None:
    for name in ("gone1", "gone2", "gone3"):
        assert run(config, "create", name, demo_image, "-i", "0").exit_code == 0
    assert run(config, "remove", "gone1", "gone2").stdout == "Removed gone1.\nRemoved gone2.\n"
    assert run(config, "rm", "gone3").exit_code == 0
    names = {app["process_guid"] for app in json.loads(run(config, "list", "--json").stdout)}
    assert not names & {"gone1", "gone2", "gone3"}
    missing = run(config, "remove", "gone1")
    assert missing.exit_code == ExitCode.COMMAND_FAILED
    assert "no app named 'gone1'" in missing.stderr


def test_commands_on_an_unknown_app(config: Path) -> None:
    for args in (["status", "nobody"], ["scale", "nobody", "1"], ["status", "nobody", "--json"]):
        result = run(config, *args)
        assert result.exit_code == ExitCode.COMMAND_FAILED, args
        assert "no app named 'nobody'" in result.stderr


def test_a_stopped_box_is_a_bad_target(tmp_path: Path, module_etcd: str) -> None:
    with running_brain(module_etcd, DOMAIN, tmp_path) as short_lived:
        config = tmp_path / "config.json"
        assert run(config, "target", short_lived.target).exit_code == 0
    wait_for(lambda: run(config, "list").exit_code == ExitCode.BAD_TARGET, 20,
             "ltc to find the stopped brain unreachable")
    result = run(config, "list")
    assert f"cannot reach http://receptor.{DOMAIN}:{short_lived.port}" in result.stderr
