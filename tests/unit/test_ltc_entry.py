"""ltc's entry point (lattice/cli/ltc_entry.py): the same command line, imported with the
garbage collector paused, and the collector running again afterwards. Each check runs in a fresh
interpreter, as the console script does."""

from __future__ import annotations

import subprocess
import sys


def run_python(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=60,
                          check=False)


def test_the_entry_runs_the_same_command_line() -> None:
    through_entry = run_python("-m", "lattice.cli.ltc_entry", "create", "--help")
    direct = run_python("-m", "lattice.cli.ltc", "create", "--help")
    assert through_entry.returncode == direct.returncode == 0, through_entry.stderr
    assert through_entry.stdout == direct.stdout
    assert "Run IMAGE as APP" in through_entry.stdout


def test_a_usage_error_still_leaves_with_invalid_syntax() -> None:
    found = run_python("-m", "lattice.cli.ltc_entry", "create")
    assert found.returncode == 13, found.stderr   # ExitCode.INVALID_SYNTAX
    assert "Missing argument 'APP'" in found.stderr


def test_the_collector_runs_again_once_ltc_is_imported() -> None:
    found = run_python("-c", "import gc, sys\n"
                             "from lattice.cli.ltc_entry import load\n"
                             "load()\n"
                             "print(gc.isenabled(), gc.get_freeze_count() > 0,\n"
                             "      'lattice.cli.ltc' in sys.modules)\n")
    assert found.stdout.split() == ["True", "True", "True"], found.stderr


def test_a_collector_paused_by_the_caller_stays_paused() -> None:
    found = run_python("-c", "import gc\n"
                             "gc.disable()\n"
                             "from lattice.cli.ltc_entry import load\n"
                             "load()\n"
                             "print(gc.isenabled())\n")
    assert found.stdout.split() == ["False"], found.stderr
