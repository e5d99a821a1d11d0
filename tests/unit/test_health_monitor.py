"""The monitor union: API parsing with every problem collected, the stored JSON (backwards
compatible), and `ltc create`'s monitor flags."""

from __future__ import annotations

from typing import Any

import pytest

from lattice.client.app_spec import CreateFlags, build_create_request, parse_create_flags
from lattice.client.errors import InvalidInput
from lattice.models import RunInfo, ValidationError, parse_desired_lrp
from lattice.models.desired import (
    CommandMonitor,
    HttpMonitor,
    Monitor,
    PortMonitor,
    describe_monitor,
)


def monitor_of(raw: Any, **extra: Any) -> Monitor:
    body = {"process_guid": "web", "image": "img", "monitor": raw, **extra}
    return parse_desired_lrp(body, epoch="e").run.monitor


def bad_fields(raw: Any) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        monitor_of(raw)
    return [e.field for e in caught.value.errors]


def test_the_three_kinds_and_the_defaults() -> None:
    assert monitor_of(None) == PortMonitor(8080, 1.0)
    assert monitor_of({"port": None}) == PortMonitor(None)
    assert monitor_of({"port": 9000, "timeout_s": 2}) == PortMonitor(9000, 2.0)
    assert monitor_of({"http": {"port": 8080, "path": "/health"}}) == HttpMonitor(8080, "/health")
    assert monitor_of({"http": {"path": "/x"}}) == HttpMonitor(8080, "/x")
    assert monitor_of({"command": ["pgrep", "app"], "timeout_s": 0.5}) == CommandMonitor(
        ("pgrep", "app"), 0.5
    )
    assert monitor_of({"timeout_s": 3}) == PortMonitor(8080, 3.0)


@pytest.mark.parametrize(
    ("raw", "fields"),
    [
        ("port", ["monitor"]),
        ({"port": 1, "command": ["x"]}, ["monitor"]),
        ({"http": {"port": 0, "path": "health"}}, ["monitor.http.port", "monitor.http.path"]),
        ({"http": "8080:/"}, ["monitor.http"]),
        ({"command": []}, ["monitor.command"]),
        ({"command": ["ok", 3]}, ["monitor.command"]),
        ({"port": 8080, "timeout_s": 0}, ["monitor.timeout_s"]),
        ({"port": 8080, "timeout_s": "1s"}, ["monitor.timeout_s"]),
        ({"port": 8080, "tiemout_s": 1}, ["monitor.tiemout_s"]),
    ],
)
def test_every_bad_field_is_named(raw: Any, fields: list[str]) -> None:
    assert bad_fields(raw) == fields


def test_start_timeout_is_validated_with_the_rest() -> None:
    with pytest.raises(ValidationError) as caught:
        monitor_of({"command": []}, start_timeout_s=-1, instances=-1)
    assert sorted(e.field for e in caught.value.errors) == [
        "instances", "monitor.command", "start_timeout_s"
    ]
    lrp = parse_desired_lrp({"process_guid": "w", "image": "i", "start_timeout_s": 5}, epoch="e")
    assert lrp.run.start_timeout_s == 5.0


@pytest.mark.parametrize(
    "monitor",
    [PortMonitor(None), PortMonitor(80, 2.5), HttpMonitor(80, "/h", 3.0),
     CommandMonitor(("a", "b"), 1.0)],
)
def test_stored_json_round_trips(monitor: Monitor) -> None:
    run = RunInfo(process_guid="w", image="i", monitor=monitor, start_timeout_s=9, version=2)
    assert RunInfo.from_dict(run.to_dict()) == run


def test_records_written_before_the_union_still_read() -> None:
    old = {"process_guid": "w", "image": "i", "monitor": {"port": 8080}}
    assert RunInfo.from_dict(old).monitor == PortMonitor(8080, 1.0)
    assert RunInfo.from_dict({**old, "monitor": {"port": None}}).monitor == PortMonitor(None)
    assert RunInfo.from_dict(old).start_timeout_s == 60.0
    assert RunInfo.from_dict(old).to_dict()["monitor"] == {"port": 8080}    # unchanged form


def test_described_for_people() -> None:
    assert describe_monitor(HttpMonitor(8080, "/h")) == "http 8080:/h"
    assert describe_monitor(CommandMonitor(("pgrep", "x"))) == "command pgrep x"
    assert describe_monitor(PortMonitor(None)) == "none"


def request(**flags: Any) -> dict[str, Any]:
    spec, _ = parse_create_flags(CreateFlags(**{"name": "web", "image": "demo", **flags}))
    return build_create_request(spec, "lattice.localhost")


def flag_problems(**flags: Any) -> list[str]:
    with pytest.raises(InvalidInput) as caught:
        parse_create_flags(CreateFlags(**{"name": "web", "image": "demo", **flags}))
    return [f.field for f in caught.value.fields]


def test_monitor_flags_make_the_api_monitor() -> None:
    assert request(monitor_url="8080:/health")["monitor"] == {
        "http": {"port": 8080, "path": "/health"}
    }
    assert request(monitor_command="test -e '/a b'", monitor_timeout="2s")["monitor"] == {
        "command": ["test", "-e", "/a b"], "timeout_s": 2.0
    }
    assert request(monitor_timeout="500ms")["monitor"] == {"timeout_s": 0.5}
    assert "monitor" not in request()
    assert request(timeout="90s")["start_timeout_s"] == 90.0
    assert "start_timeout_s" not in request()


def test_bad_monitor_flags_are_all_reported() -> None:
    assert flag_problems(
        monitor_url="health", monitor_command="a 'b", monitor_timeout="soon"
    ) == ["monitor", "monitor-url", "monitor-url", "monitor-command", "monitor-timeout"]
    assert flag_problems(monitor_url="9090:/", ports="8080") == ["monitor-url"]
    assert flag_problems(no_monitor=True, monitor_timeout="1s") == ["monitor-timeout"]
    assert flag_problems(monitor_timeout="2m") == ["monitor-timeout"]
