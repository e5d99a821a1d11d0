"""What ltc prints: log lines, the list and status tables, JSON, errors and their exit codes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from lattice.cli import messages
from lattice.cli.exit_codes import ExitCode, exit_code_for
from lattice.client.app_runner import AppStatus, AppSummary, InstanceStatus
from lattice.client.errors import (
    ApiError,
    AppAlreadyExists,
    AppNotFound,
    BadTarget,
    ClientError,
    ConfigError,
    InstanceProblem,
    InstancesCrashed,
    InvalidInput,
    InvalidRequest,
    PlacementFailed,
    ProtocolError,
    WaitTimedOut,
)
from lattice.client.receptor import desired_lrp_from_dict
from lattice.models import ActualLRP, ActualState, DesiredLRP, FieldError, PortMapping
from lattice.models.metrics import InstanceMetrics
from logagg.envelope import Envelope

# 2026-11-22 14:03:07.25 UTC
STAMP_NS = int(datetime(2026, 11, 22, 14, 3, 7, tzinfo=UTC).timestamp()) * 10**9 + 250_000_000


def envelope(source: str = "APP", instance: str = "0", message: str = "hello") -> Envelope:
    return Envelope("web", source, instance, "OUT", STAMP_NS, message)


def test_log_line_format() -> None:
    assert messages.log_line(envelope(), UTC) == "11/22 14:03:07.25 [APP|0] hello"
    assert messages.log_line(envelope("RTR", "", "GET /\n"), UTC) == "11/22 14:03:07.25 [RTR] GET /"
    plus_two = timezone(timedelta(hours=2))
    assert messages.log_line(envelope("CELL", "2"), plus_two).startswith("11/22 16:03:07.25 ")


def test_log_lines_are_in_local_time_by_default() -> None:
    local = datetime.fromtimestamp(STAMP_NS // 10**9)
    assert messages.log_line(envelope()) == f"{local:%m/%d %H:%M:%S}.25 [APP|0] hello"


def test_centiseconds_are_truncated_not_rounded() -> None:
    late = Envelope("web", "APP", "1", "ERR", STAMP_NS + 749_999_999, "x")
    assert messages.log_line(late, UTC) == "11/22 14:03:07.99 [APP|1] x"


def desired(**overrides: object) -> DesiredLRP:
    data = {
        "process_guid": "web", "image": "lattice/demo-app:latest", "instances": 3,
        "memory_mb": 128, "disk_mb": 0, "cpu_weight": 100, "ports": [8080],
        "routes": [{"hostnames": ["web.lattice.localhost"], "port": 8080}],
        "modification_tag": {"epoch": "e", "index": 0}, "monitor": {"port": 8080},
        "env": [], "command": [], "args": [],
    }
    data.update(overrides)
    return desired_lrp_from_dict(data)


def instance(index: int, state: ActualState, **kw: object) -> ActualLRP:
    return ActualLRP("web", index, f"g{index}", state, since=5, **kw)  # type: ignore[arg-type]


STATUS = AppStatus(
    desired(),
    (
        InstanceStatus(
            instance(0, ActualState.RUNNING, cell_id="cell-0", address="127.0.0.1",
                     ports=(PortMapping(8080, 32768),), crash_count=1,
                     crash_reason="Exited with status 137"), 67.0,
            InstanceMetrics(process_guid="web", index=0, instance_guid="g0", cell_id="cell-0",
                            cpu_percent=12.34, memory_bytes=25_296_896,
                            memory_limit_bytes=128 * 1024 * 1024, disk_bytes=3 * 1024 * 1024,
                            sampled_at=7)),
        InstanceStatus(
            instance(1, ActualState.CRASHED, crash_count=2, cell_id="cell-0",
                     crash_reason="exited with status 1"), None),
        InstanceStatus(instance(2, ActualState.UNCLAIMED, placement_error="no cells available"),
                       None),
    ),
)


def test_status_text() -> None:
    text = messages.app_status(STATUS)
    assert text.splitlines()[:8] == [
        "App:        web",
        "Image:      lattice/demo-app:latest",
        "Instances:  1/3 running",
        "Memory:     128 MB",
        "CPU weight: 100",
        "Ports:      8080",
        "Monitor:    port 8080",
        "Routes:     web.lattice.localhost => 8080",
    ]
    assert text.splitlines()[9:] == [
        "INDEX  STATE      CRASHES  UPTIME  CELL    ADDRESS    PORTS        CPU    MEMORY      "
        "DISK",
        "0      RUNNING    1        1m07s   cell-0  127.0.0.1  8080->32768  12.3%  24.1M/128M  3M",
        "    last crash: Exited with status 137",
        "1      CRASHED    2        -       cell-0  -          -            -      -           -",
        "    crash reason: exited with status 1",
        "2      UNCLAIMED  0        -       -       -          -            -      -           -",
        "    placement error: no cells available",
    ]


def test_status_json_uses_diegos_field_names() -> None:
    data = json.loads(messages.app_status_json(STATUS))
    assert data["process_guid"] == "web"
    assert data["instances"][0] == {
        "process_guid": "web", "index": 0, "instance_guid": "g0", "state": "RUNNING",
        "since": 5, "cell_id": "cell-0", "address": "127.0.0.1",
        "ports": [{"container_port": 8080, "host_port": 32768}], "crash_count": 1,
        "crash_reason": "Exited with status 137", "placement_error": "", "container_id": "",
        "running_since": 0, "run_version": 0, "uptime_s": 67.0,
        "metrics": {"cpu_percent": 12.34, "memory_bytes": 25_296_896,
                    "memory_limit_bytes": 134_217_728, "disk_bytes": 3_145_728, "sampled_at": 7},
    }
    assert data["instances"][1]["metrics"] is None     # not sampled: null, not left out
    assert data["instances"][2]["placement_error"] == "no cells available"


def test_status_of_an_app_without_instances() -> None:
    text = messages.app_status(AppStatus(desired(instances=0, routes=[]), ()))
    assert "Routes:     -" in text
    assert text.endswith("No instances.")


def test_list_text_and_json() -> None:
    apps = [AppSummary(desired(), 2),
            AppSummary(desired(process_guid="db", memory_mb=0, routes=[], instances=1), 0)]
    assert messages.app_list(apps).splitlines() == [
        "APP  INSTANCES  MEMORY    ROUTES",
        "web  2/3        128 MB    web.lattice.localhost",
        "db   0/1        no limit  -",
    ]
    data = json.loads(messages.app_list_json(apps))
    assert [(a["process_guid"], a["instances"], a["running_instances"]) for a in data] == [
        ("web", 3, 2), ("db", 1, 0),
    ]
    assert messages.app_list([]) == "No apps."


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (0, "0s"), (59.9, "59s"), (61, "1m01s"), (3725, "1h02m"), (90061, "1d01h")],
)
def test_durations(seconds: float | None, text: str) -> None:
    assert messages.duration(seconds) == text


def test_app_running_prints_urls() -> None:
    assert messages.app_running(desired(), ["http://web.lattice.localhost:8080"]) == (
        "web is running: 3 instance(s).\n  http://web.lattice.localhost:8080"
    )
    assert messages.app_running(desired(routes=[]), []).endswith("(no routes)")


FIELDS = [FieldError("routes[0].hostnames", "receptor.x is reserved by the box"),
          FieldError("routes[1].hostnames", "doppler.x is reserved by the box")]
IMAGE = [FieldError("image", "image 'nope' not found on the box")]
CRASHES = [InstanceProblem(0, "exited with status 1", 3)]


@pytest.mark.parametrize(
    ("error", "code", "shown"),
    [
        (InvalidInput([FieldError("env", "'X' is not NAME=VALUE")]), ExitCode.INVALID_SYNTAX,
         ["nothing was sent", "env: 'X' is not NAME=VALUE"]),
        (ConfigError("cannot read /x"), ExitCode.FILE_SYSTEM_ERROR, ["cannot read /x"]),
        (BadTarget("cannot reach http://receptor.x"), ExitCode.BAD_TARGET, ["cannot reach"]),
        (PlacementFailed("web", [InstanceProblem(1, "no cells available")]),
         ExitCode.PLACEMENT_ERROR, ["web could not be placed", "instance 1: no cells available"]),
        (WaitTimedOut("web", 1, 3, 30), ExitCode.TIMEOUT, ["timed out after 30 s", "1/3"]),
        (InstancesCrashed("web", CRASHES), ExitCode.COMMAND_FAILED,
         ["keeps crashing", "crashed 3 times: exited with status 1", "ltc logs web"]),
        (InvalidRequest(400, "InvalidRequest", "invalid desired LRP", IMAGE),
         ExitCode.BAD_DOCKER, ["image 'nope' not found", "No registry"]),
        (InvalidRequest(400, "InvalidRequest", "invalid desired LRP", FIELDS),
         ExitCode.COMMAND_FAILED, ["routes[0].hostnames: receptor.x", "routes[1].hostnames"]),
        (AppNotFound(404, "DesiredLRPNotFound", "no app named 'web'", []),
         ExitCode.COMMAND_FAILED, ["no app named 'web'"]),
        (AppAlreadyExists(409, "DesiredLRPAlreadyExists", "an app named 'web' exists", []),
         ExitCode.COMMAND_FAILED, ["an app named 'web' exists", "remove it first"]),
        (ApiError(503, "ServiceUnavailable", "the store is unavailable", []),
         ExitCode.COMMAND_FAILED, ["503 ServiceUnavailable", "the store is unavailable"]),
        (ProtocolError("not JSON"), ExitCode.COMMAND_FAILED, ["not JSON"]),
    ],
)
def test_each_error_has_its_message_and_exit_code(
    error: ClientError, code: ExitCode, shown: list[str]
) -> None:
    assert exit_code_for(error) == code
    text = messages.error_message(error)
    for part in shown:
        assert part in text


def test_api_error_bodies_become_the_specific_error() -> None:
    body = {"error": {"type": "DesiredLRPNotFound", "message": "no app named 'x'"}}
    assert isinstance(ApiError.from_body(404, body), AppNotFound)
    body = {"error": {"type": "InvalidRequest", "message": "bad",
                      "fields": [{"field": "instances", "message": "must be >= 0"}]}}
    error = ApiError.from_body(400, body)
    assert isinstance(error, InvalidRequest)
    assert error.fields == [FieldError("instances", "must be >= 0")]
    assert type(ApiError.from_body(418, {"error": {"type": "Teapot"}})) is ApiError
    with pytest.raises(ProtocolError):
        ApiError.from_body(500, {"message": "no error object"})
