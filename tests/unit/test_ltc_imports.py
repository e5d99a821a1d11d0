"""`ltc create` starts without the heavy modules: no aiohttp (about 100 ms to import), no asyncio
(about 30 ms: create runs without an event loop), no etcd or gRPC client, no log aggregator
server, no Docker SDK. Not a timed test: it checks which modules
a fresh interpreter has loaded once the command has run, so a new top-level import that drags
one of them back into the path fails here, whatever the machine's speed."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

from lattice.cli.exit_codes import ExitCode

FORBIDDEN = ("aiohttp", "asyncio", "aetcd", "grpc", "logagg.main", "logagg.client", "docker",
             "structlog", "lattice.store", "lattice.brain", "lattice.cell")

# Runs `ltc create` as far as it goes against a port that refuses connections, then loads the
# module its wait would load (the event stream reader), and lists what the interpreter holds.
CHILD = """
import json, sys
from click.testing import CliRunner
from lattice.cli.ltc import cli
result = CliRunner().invoke(cli, ["create", "web", "some/image", "-i", "2"],
                            env={"LATTICE_TARGET": "box.localhost:%d",
                                 "LATTICE_CONFIG": "/nonexistent"})
import lattice.client.app_events
print(json.dumps({"exit_code": result.exit_code, "output": result.output,
                  "modules": sorted(sys.modules)}))
"""


def loaded_modules(code: str) -> dict[str, object]:
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, timeout=60)
    answer: dict[str, object] = json.loads(found.stdout)
    return answer


def heavy(modules: object) -> list[str]:
    assert isinstance(modules, list)
    return [m for m in modules if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port     # closed again: a connection to it is refused


def test_ltc_create_loads_no_heavy_module() -> None:
    found = loaded_modules(CHILD % closed_port())
    # The command really ran: it got as far as connecting to the box.
    assert found["exit_code"] == ExitCode.BAD_TARGET, found["output"]
    assert heavy(found["modules"]) == []


def test_ltc_help_loads_no_heavy_module() -> None:
    found = loaded_modules(
        "import json, sys\n"
        "from click.testing import CliRunner\n"
        "from lattice.cli.ltc import cli\n"
        "result = CliRunner().invoke(cli, ['--help'])\n"
        "print(json.dumps({'exit_code': result.exit_code, 'modules': sorted(sys.modules)}))\n"
    )
    assert found["exit_code"] == 0
    assert heavy(found["modules"]) == []


def test_the_check_sees_a_heavy_module_when_one_is_loaded() -> None:
    """The checks above can fail: a command that streams logs does load aiohttp and asyncio."""
    found = loaded_modules(
        "import json, sys\n"
        "import lattice.cli.ltc_logs, lattice.client.logs\n"
        "print(json.dumps({'modules': sorted(sys.modules)}))\n"
    )
    assert {"aiohttp", "asyncio"} <= set(heavy(found["modules"]))
