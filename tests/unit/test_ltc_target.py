"""The target: parsing DOMAIN[:PORT], its URLs, and the config file it is saved in."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from lattice.cli.exit_codes import ExitCode
from lattice.cli.ltc import cli
from lattice.client.errors import ConfigError, InvalidInput
from lattice.client.target import Target, load_target, parse_target, save_target


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("lattice.localhost", Target("lattice.localhost", 80)),
        ("lattice.localhost:8080", Target("lattice.localhost", 8080)),
        ("Lattice.LocalHost.:8080", Target("lattice.localhost", 8080)),
        ("192.168.11.11.xip.io", Target("192.168.11.11.xip.io", 80)),
        ("  box.example.com:1 ", Target("box.example.com", 1)),
    ],
)
def test_parse_target(text: str, target: Target) -> None:
    assert parse_target(text) == target


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("http://lattice.localhost", "not a URL"),
        ("lattice.localhost:0", "not in 1-65535"),
        ("lattice.localhost:65536", "not in 1-65535"),
        ("lattice.localhost:http", "not in 1-65535"),
        (":8080", "empty"),
        ("127.0.0.1:8080", "use 127.0.0.1.nip.io"),
        ("bad_domain.localhost", "not a valid domain"),
        ("*.lattice.localhost", "not a valid domain"),
    ],
)
def test_bad_targets_are_refused_naming_the_problem(text: str, complaint: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_target(text)
    assert caught.value.fields[0].field == "target"
    assert complaint in caught.value.fields[0].message


def test_urls_leave_port_80_implicit() -> None:
    assert Target("lattice.localhost", 80).receptor_url == "http://receptor.lattice.localhost"
    assert Target("lattice.localhost", 8080).doppler_url == "http://doppler.lattice.localhost:8080"
    assert Target("box.io", 8080).url_for("web.box.io") == "http://web.box.io:8080"
    assert str(Target("box.io", 80)) == "box.io"
    assert str(Target("box.io", 8080)) == "box.io:8080"


def test_saved_target_is_private_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "home" / ".lattice" / "config.json"
    save_target(path, Target("lattice.localhost", 8080))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "home").stat().st_mode) == 0o700
    assert json.loads(path.read_text()) == {"domain": "lattice.localhost", "port": 8080}
    assert load_target(path) == Target("lattice.localhost", 8080)
    save_target(path, Target("other.localhost", 80))     # overwriting keeps it private
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_target(path) == Target("other.localhost", 80)
    assert [p.name for p in path.parent.iterdir()] == ["config.json"]   # no temp file left


def test_an_existing_directory_keeps_its_mode(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    save_target(tmp_path / "config.json", Target("lattice.localhost", 80))
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "config.json").stat().st_mode) == 0o600


def test_no_config_means_no_target(tmp_path: Path) -> None:
    assert load_target(tmp_path / "missing.json") is None


def test_a_corrupt_config_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"domain": "x"')
    with pytest.raises(ConfigError, match=str(path)):
        load_target(path)
    path.write_text('{"domain": "x"}')
    with pytest.raises(ConfigError, match="not a valid ltc config"):
        load_target(path)


def test_saving_under_a_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="cannot write"):
        save_target(tmp_path / "file" / "config.json", Target("lattice.localhost", 80))


def test_ltc_target_without_argument_shows_the_saved_target(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    runner = CliRunner()
    env = {"LATTICE_CONFIG": str(path)}
    result = runner.invoke(cli, ["target"], env=env)
    assert (result.exit_code, result.stdout) == (0, "No target set.\n")
    save_target(path, Target("lattice.localhost", 8080))
    result = runner.invoke(cli, ["target"], env=env)
    assert (result.exit_code, result.stdout) == (0, "Target: lattice.localhost:8080\n")


def test_ltc_target_refuses_a_bad_target_without_saving(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    result = CliRunner().invoke(cli, ["target", "127.0.0.1:8080"],
                                env={"LATTICE_CONFIG": str(path)})
    assert result.exit_code == ExitCode.INVALID_SYNTAX
    assert "127.0.0.1.nip.io" in result.stderr
    assert not path.exists()


def test_a_corrupt_config_exits_with_the_file_system_code(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("not json")
    result = CliRunner().invoke(cli, ["list"], env={"LATTICE_CONFIG": str(path)})
    assert result.exit_code == ExitCode.FILE_SYSTEM_ERROR
    assert str(path) in result.stderr
