"""ltc's command line: bad input is refused with the field named and InvalidSyntax (13),
before the target is even read, so nothing can have been sent."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from lattice.cli import messages
from lattice.cli.exit_codes import ExitCode
from lattice.cli.ltc import cli


def ltc(tmp_path: Path, *args: str) -> Result:
    # No config file exists: a command that got as far as the target would exit BAD_TARGET.
    return CliRunner().invoke(cli, list(args), env={"LATTICE_CONFIG": str(tmp_path / "c.json"),
                                                    "LATTICE_TARGET": None, "LTC_TIMEOUT": None})


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["create", "web", "img", "-e", "NOVALUE"], "env: 'NOVALUE' is not NAME=VALUE"),
        (["create", "web", "img", "--env", "A=1", "-e", "2B=x"], "'2B' in '2B=x'"),
        (["create", "web/1", "img"], "app: 'web/1'"),
        (["create", "web", "img", "-i", "-1"], "instances: must be 0 or more"),
        (["create", "web", "img", "-m", "-1"], "memory-mb: must be 0"),
        (["create", "web", "img", "-p", "8080,70000"], "ports: port 70000 is outside 1-65535"),
        (["create", "web", "img", "-M", "0"], "monitor-port: port 0"),
        (["create", "web", "img", "-R", "bad host"], "http-route: 'bad host'"),
        (["create", "web", "img", "-t", "soon"], "timeout: 'soon'"),
        (["create", "web", "img", "--no-routes", "-R", "x"], "exclude each other"),
        (["scale", "web", "-1"], "instances: must be 0 or more"),
        (["scale", "web", "2", "-t", "0"], "timeout: must be more than 0"),
        (["scale", "a.b", "2"], "app: 'a.b'"),
        (["status", "a b"], "app: 'a b'"),
        (["remove", "ok", "not/ok"], "app: 'not/ok'"),
        (["rm", "not/ok"], "app: 'not/ok'"),
        (["logs", "not/ok"], "app: 'not/ok'"),
        (["target", "lattice.localhost:99999"], "target: port '99999'"),
        (["--target", "1.2.3.4", "list"], "1.2.3.4.nip.io"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    tmp_path: Path, args: list[str], named: str
) -> None:
    result = ltc(tmp_path, *args)
    assert result.exit_code == ExitCode.INVALID_SYNTAX, result.output
    assert named in result.stderr
    assert result.stdout == ""


def test_all_bad_create_flags_are_listed_together(tmp_path: Path) -> None:
    result = ltc(tmp_path, "create", "web", "img", "-e", "X", "-i", "-2", "-p", "0")
    assert result.exit_code == ExitCode.INVALID_SYNTAX
    assert result.stderr.splitlines() == [
        "Error: invalid input, nothing was sent:",
        "  instances: must be 0 or more, got -2",
        "  ports: port 0 is outside 1-65535",
        "  env: 'X' is not NAME=VALUE",
    ]


@pytest.mark.parametrize(
    "args",
    [["create", "web"], ["create", "web", "img", "-i", "many"], ["scale", "web"],
     ["scale", "web", "two"], ["status"], ["remove"], ["nonsense"], ["list", "--bogus"]],
)
def test_usage_errors_exit_with_invalid_syntax(tmp_path: Path, args: list[str]) -> None:
    result = ltc(tmp_path, *args)
    assert result.exit_code == ExitCode.INVALID_SYNTAX, result.output
    assert "Error:" in result.stderr


@pytest.mark.parametrize(
    "args",
    [["list"], ["status", "web"], ["create", "web", "img"], ["scale", "web", "2"],
     ["remove", "web"], ["logs", "web"]],
)
def test_good_input_without_a_target_is_a_bad_target(tmp_path: Path, args: list[str]) -> None:
    result = ltc(tmp_path, *args)
    assert result.exit_code == ExitCode.BAD_TARGET, result.output
    assert result.stderr == f"Error: {messages.NO_TARGET}\n"
    assert result.stdout == ""


def test_help_and_version(tmp_path: Path) -> None:
    result = ltc(tmp_path, "--help")
    assert result.exit_code == 0
    for command in ("create", "scale", "remove", "rm", "list", "status", "logs", "target"):
        assert command in result.stdout
    assert ltc(tmp_path, "--version").exit_code == 0
    create_help = ltc(tmp_path, "create", "--help").stdout
    for flag in ("--instances", "--memory-mb", "--cpu-weight", "--ports", "--env",
                 "--monitor-port", "--no-monitor", "--http-route", "--no-routes", "--timeout"):
        assert flag in create_help
