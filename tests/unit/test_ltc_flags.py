"""`ltc create`'s flags: parsing, every bad one reported at once, and the request they make."""

from __future__ import annotations

import pytest

from lattice.client.app_spec import (
    AppSpec,
    CreateFlags,
    RouteSpec,
    build_create_request,
    parse_create_flags,
    parse_duration,
)
from lattice.client.errors import InvalidInput

DOMAIN = "lattice.localhost"


def parse(**flags: object) -> AppSpec:
    spec, _ = parse_create_flags(CreateFlags(**{"name": "web", "image": "demo", **flags}))
    return spec


def problems(**flags: object) -> list[tuple[str, str]]:
    with pytest.raises(InvalidInput) as caught:
        parse_create_flags(CreateFlags(**{"name": "web", "image": "demo", **flags}))
    return [(f.field, f.message) for f in caught.value.fields]


def test_defaults_are_lattices() -> None:
    spec, timeout = parse_create_flags(CreateFlags(name="web", image="demo"))
    assert spec == AppSpec(name="web", image="demo", instances=1, memory_mb=128, cpu_weight=100)
    assert timeout == 120


def test_env_values_may_be_empty_or_contain_equals() -> None:
    spec = parse(env=["A=1", "B=", "C=x=y", "_D1=ok"])
    assert spec.env == (("A", "1"), ("B", ""), ("C", "x=y"), ("_D1", "ok"))


def test_ports_are_a_comma_separated_list() -> None:
    assert parse(ports="8080").ports == (8080,)
    assert parse(ports="8080, 9090,8080").ports == (8080, 9090)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30", 30), ("30s", 30), ("2m", 120), ("1m30s", 90), ("500ms", 0.5), ("1h", 3600),
     ("1.5s", 1.5), (" 2M ", 120)],
)
def test_timeouts(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert parse_create_flags(CreateFlags(name="w", image="i", timeout=text))[1] == seconds


@pytest.mark.parametrize("text", ["0", "-1", "0s", "2x", "", "m", "1.5.2s", "s30", "nan", "inf"])
def test_bad_timeouts_name_the_flag(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_duration(text)
    assert caught.value.fields[0].field == "timeout"


def test_routes_without_a_dot_go_under_the_domain() -> None:
    spec = parse(routes=["api", "www.example.com", "admin:9090"], ports="8080,9090")
    assert spec.routes == (
        RouteSpec("api"), RouteSpec("www.example.com"), RouteSpec("admin", 9090),
    )
    assert [r.qualified(DOMAIN) for r in spec.routes] == [
        "api.lattice.localhost", "www.example.com", "admin.lattice.localhost",
    ]


def test_every_bad_flag_is_reported_at_once() -> None:
    found = problems(
        name="bad name", image=" ", instances=-1, memory_mb=-5, cpu_weight=0,
        ports="0,80x", env=["NOEQUALS", "1BAD=x"], monitor_port=70000,
        routes=["a b", "ok:99999"], timeout="soon",
    )
    fields = [field for field, _ in found]
    assert fields == [
        "app", "image", "instances", "memory-mb", "cpu-weight", "ports", "ports", "env", "env",
        "monitor-port", "http-route", "http-route", "timeout",
    ]
    messages = " | ".join(message for _, message in found)
    for text in ("'bad name'", "got -1", "got -5", "port 0", "'80x'", "'NOEQUALS'", "'1BAD'",
                 "70000", "'a b'", "99999", "'soon'"):
        assert text in messages


def test_conflicting_flags_are_refused() -> None:
    assert problems(no_monitor=True, monitor_port=8080) == [
        ("monitor-port", "--monitor-port and --no-monitor exclude each other")
    ]
    assert problems(no_routes=True, routes=["api"]) == [
        ("http-route", "--http-route and --no-routes exclude each other")
    ]
    assert problems(ports="8080", routes=["api:9090"]) == [
        ("http-route", "api:9090 is not one of --ports")
    ]
    assert problems(ports="8080", monitor_port=9090) == [
        ("monitor-port", "9090 is not one of --ports")
    ]


def test_long_app_names_are_refused() -> None:
    assert problems(name="a" * 64)[0][0] == "app"


def test_default_request_leaves_ports_and_monitor_to_the_api() -> None:
    assert build_create_request(parse(), DOMAIN) == {
        "process_guid": "web",
        "image": "demo",
        "instances": 1,
        "memory_mb": 128,
        "cpu_weight": 100,
        "env": [],
        "routes": [{"hostnames": ["web.lattice.localhost"]}],   # port: the API's first port
    }


def test_full_request() -> None:
    spec = parse(
        instances=3, memory_mb=0, cpu_weight=50, ports="8080,9090", env=["A=1"],
        command=["/bin/sh", "-c", "echo hi"], monitor_port=9090,
        routes=["web", "www.example.com", "admin:9090", "web"],
    )
    request = build_create_request(spec, DOMAIN)
    assert request == {
        "process_guid": "web",
        "image": "demo",
        "instances": 3,
        "memory_mb": 0,
        "cpu_weight": 50,
        "ports": [8080, 9090],
        "env": [{"name": "A", "value": "1"}],
        "command": ["/bin/sh"],
        "args": ["-c", "echo hi"],
        "monitor": {"port": 9090},
        "routes": [
            {"hostnames": ["web.lattice.localhost", "www.example.com"]},
            {"hostnames": ["admin.lattice.localhost"], "port": 9090},
        ],
    }


def test_no_monitor_and_no_routes() -> None:
    request = build_create_request(parse(no_monitor=True, no_routes=True), DOMAIN)
    assert request["monitor"] == {"port": None}
    assert request["routes"] == []


def test_the_default_route_of_an_underscored_name_is_a_valid_host() -> None:
    request = build_create_request(parse(name="My_App"), DOMAIN)
    assert request["routes"] == [{"hostnames": ["my-app.lattice.localhost"]}]
    assert request["process_guid"] == "My_App"
