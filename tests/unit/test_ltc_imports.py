"""`ltc create` starts without the heavy modules: no aiohttp (about 100 ms to import), no asyncio
(about 30 ms: create runs without an event loop), no etcd or gRPC client, no log aggregator
(its record types are only annotations in ltc), no Docker SDK; nor the few-millisecond ones
only other commands need: tempfile (with shutil, random and the compressors: `ltc target`;
click loads shutil for --help alone), tarfile (lattice.images: `ltc test`), the metrics model
(`ltc status`), shlex (--monitor-command), and the idna codec (socket.getaddrinfo's for a str
host: plain_http connects with bytes); nor http.client with the email package and ssl (about
13 ms: lattice/client/plain_http.py speaks HTTP instead), nor the cell and task models (the
package lattice.models imports its modules on first use), nor the modules of the other commands
(ltc.COMMAND_MODULES: imported when one of theirs runs or `ltc --help` lists them). Not a timed
test: it checks which modules a fresh interpreter has loaded once the command has run, so a new
top-level import that drags one of them back into the path fails here, whatever the machine's
speed. The command runs through click's own entry (`cli.main`), not click.testing's CliRunner,
which imports tempfile and shlex itself."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from lattice.cli.exit_codes import ExitCode

FORBIDDEN = ("aiohttp", "asyncio", "aetcd", "grpc", "logagg", "docker", "structlog",
             "lattice.store", "lattice.brain", "lattice.cell", "lattice.images",
             "lattice.models.metrics", "lattice.models.cell", "lattice.models.task",
             "tempfile", "tarfile", "shlex", "encodings.idna", "http.client", "email", "ssl")
# What `ltc create` does without, though `ltc --help` loads it to list every command.
NOT_FOR_CREATE = ("lattice.cli.ltc_cluster", "lattice.cli.ltc_functions", "lattice.cli.ltc_logs",
                  "lattice.cli.ltc_tasks", "lattice.cli.ltc_update", "lattice.models.function",
                  "lattice.client.box_info")

# Runs `ltc create` as far as it goes against a port that refuses connections (its request is
# the first thing it sends), lists what the interpreter holds, then loads what its wait would
# load once the request is sent (app_runner, the event stream reader and the actual LRP model)
# and lists again.
CHILD = """
import json, sys
from lattice.cli.ltc import cli
try:
    cli.main(%r, prog_name="ltc")
except SystemExit as exc:
    code = exc.code
before_request = sorted(sys.modules)
import lattice.client.app_runner
print(json.dumps({"exit_code": code, "before_request": before_request,
                  "modules": sorted(sys.modules)}))
"""
# What `ltc create` imports only once its request is sent: the box places and starts the app
# meanwhile (lattice/client/app_creator.py).
AFTER_REQUEST = ("lattice.client.app_runner", "lattice.models.actual", "lattice.client.connection")


def loaded_modules(code: str, env: dict[str, str] | None = None) -> dict[str, object]:
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, timeout=60, env={**os.environ, **(env or {})})
    answer: dict[str, object] = json.loads(found.stdout.splitlines()[-1])
    answer["output"] = found.stdout + found.stderr
    return answer


def heavy(modules: object, forbidden: tuple[str, ...] = FORBIDDEN) -> list[str]:
    assert isinstance(modules, list)
    return [m for m in modules if any(m == f or m.startswith(f + ".") for f in forbidden)]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port     # closed again: a connection to it is refused


def test_ltc_create_loads_no_heavy_module() -> None:
    found = loaded_modules(CHILD % (["create", "web", "some/image", "-i", "2"],),
                           {"LATTICE_TARGET": f"box.localhost:{closed_port()}",
                            "LATTICE_CONFIG": "/nonexistent"})
    # The command really ran: it got as far as connecting to the box.
    assert found["exit_code"] == ExitCode.BAD_TARGET, found["output"]
    assert heavy(found["modules"], FORBIDDEN + NOT_FOR_CREATE) == []
    assert heavy(found["before_request"], AFTER_REQUEST) == []
    assert "lattice.client.plain_http" in found["before_request"]    # the check sees modules


def test_ltc_help_loads_no_heavy_module() -> None:
    found = loaded_modules(CHILD % (["--help"],))
    assert found["exit_code"] == 0, found["output"]
    assert heavy(found["modules"]) == []
    # It lists every command, so it loads every command module: the check above covers them.
    assert set(NOT_FOR_CREATE) <= set(heavy(found["modules"], NOT_FOR_CREATE))


def test_the_table_of_command_modules_names_each_modules_commands() -> None:
    import click

    from lattice.cli import ltc

    for module_name in set(ltc.COMMAND_MODULES.values()):
        module = __import__(module_name, fromlist=["COMMANDS"])
        assert {c.name for c in module.COMMANDS} == {
            name for name, home in ltc.COMMAND_MODULES.items() if home == module_name}
    # None of them has the name of a command that ltc.py defines itself.
    own = {c.name for c in vars(ltc).values() if isinstance(c, click.Command) and c is not ltc.cli}
    assert "create" in own
    assert not own & set(ltc.COMMAND_MODULES)


def test_the_check_sees_a_heavy_module_when_one_is_loaded() -> None:
    """The checks above can fail: a command that streams logs does load aiohttp and asyncio."""
    found = loaded_modules(
        "import json, sys\n"
        "import lattice.cli.ltc_logs, lattice.client.logs\n"
        "print(json.dumps({'modules': sorted(sys.modules)}))\n"
    )
    assert {"aiohttp", "asyncio"} <= set(heavy(found["modules"]))


def test_the_check_sees_http_client_when_one_is_loaded() -> None:
    found = loaded_modules("import json, sys, http.client\n"
                           "print(json.dumps({'modules': sorted(sys.modules)}))\n")
    assert {"http.client", "email", "ssl"} <= set(heavy(found["modules"]))


def test_the_models_package_imports_its_modules_on_first_use() -> None:
    """`from lattice.models import X` still works for every name, each from its own module."""
    found = loaded_modules(
        "import json, sys\n"
        "import lattice.models as models\n"
        "before = sorted(m for m in sys.modules if m.startswith('lattice.models.'))\n"
        "homes = {name: getattr(models, name).__module__ for name in models.__all__\n"
        "         if hasattr(getattr(models, name), '__module__')}\n"
        "from lattice.models import *\n"
        "print(json.dumps({'modules': before, 'homes': homes}))\n"
    )
    assert found["modules"] == []
    homes = found["homes"]
    assert isinstance(homes, dict)
    assert homes["Task"] == "lattice.models.task"
    assert homes["CellPresence"] == "lattice.models.cell"
    assert homes["DesiredLRP"] == "lattice.models.desired"
    assert len(homes) >= 25


def test_every_name_of_the_client_package_resolves() -> None:
    import lattice.client

    for name in lattice.client.__all__:
        assert getattr(lattice.client, name) is not None, name


def test_an_unknown_model_name_is_still_an_import_error() -> None:
    import lattice.models

    with pytest.raises(ImportError, match="cannot import name 'Nothing'"):
        exec("from lattice.models import Nothing", {})
    assert not hasattr(lattice.models, "Nothing")


def test_the_smoke_tests_default_image_is_the_demo_image() -> None:
    """ltc_cluster spells the name out rather than import lattice.images (and tarfile)."""
    from lattice.cli.ltc_cluster import DEMO_IMAGE
    from lattice.images import DEMO_IMAGE as BUILT

    assert DEMO_IMAGE == BUILT
