"""Least-connections, cool-down marks, affinity parsing and the metrics text: pure logic."""

from __future__ import annotations

import random

import pytest

from router.affinity import (
    parse_app_instance,
    session_started,
    sticky_instance,
    vcap_cookie_header,
)
from router.cooldown import CoolDown
from router.leastconnection import InFlight, LeastConnection
from router.metrics import Metrics
from router.pool import Endpoint, Pool

A, B, C = (Endpoint("127.0.0.1", 9000 + n, "app", n, f"app-{n}") for n in range(3))


def test_least_connections_picks_the_least_loaded() -> None:
    in_flight = InFlight()
    balancer = LeastConnection(in_flight, random.Random(1))
    for _ in range(2):
        in_flight.started(A)
    in_flight.started(B)
    assert {balancer.pick((A, B, C)) for _ in range(5)} == {C}
    in_flight.started(C)
    in_flight.started(C)
    assert {balancer.pick((A, B, C)) for _ in range(5)} == {B}


@pytest.mark.parametrize("seed", range(5))
def test_least_connections_with_equal_loads_returns_each_once(seed: int) -> None:
    pool = Pool((A, B, C), LeastConnection(InFlight(), random.Random(seed)))
    assert sorted(e.port for e in (pool.next() for _ in range(3)) if e) == [9000, 9001, 9002]


def test_in_flight_counts_go_back_to_nothing() -> None:
    in_flight = InFlight()
    in_flight.started(A)
    in_flight.started(A)
    in_flight.ended(A)
    assert in_flight.of(A) == 1
    in_flight.ended(A)
    assert in_flight.of(A) == 0
    assert in_flight.total() == 0


def test_in_flight_counts_follow_equal_endpoints() -> None:
    # A table change rebuilds endpoints: an equal one must see the count of the one it replaces.
    in_flight = InFlight()
    in_flight.started(A)
    rebuilt = Endpoint(A.address, A.port, A.process_guid, A.index, A.instance_guid)
    assert rebuilt is not A
    assert in_flight.of(rebuilt) == 1
    other_instance = Endpoint(A.address, A.port, A.process_guid, A.index, "another-guid")
    assert in_flight.of(other_instance) == 0
    in_flight.ended(rebuilt)
    assert in_flight.of(A) == 0


def test_least_connections_of_nothing_is_none() -> None:
    assert LeastConnection(InFlight()).pick(()) is None


def test_a_marked_endpoint_is_skipped_until_its_cool_down_ends() -> None:
    cooldown = CoolDown(10.0)
    assert not cooldown
    cooldown.mark(A, now=100.0)
    assert cooldown
    assert cooldown.usable((A, B), now=105.0) == [B]
    assert cooldown.usable((A, B), now=110.0) == [A, B]
    assert not cooldown


def test_when_every_endpoint_is_marked_the_marks_are_cleared() -> None:
    cooldown = CoolDown(10.0)
    cooldown.mark(A, now=0.0)
    cooldown.mark(B, now=0.0)
    cooldown.mark(C, now=0.0)
    assert cooldown.usable((A, B), now=1.0) == [A, B]
    assert not cooldown.is_marked(A, 1.0)
    assert cooldown.is_marked(C, 1.0)     # only the marks of the endpoints asked about go
    assert cooldown.usable((), now=1.0) == []


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        (b"app-guid:0", ("app-guid", 0)),
        (b" web_1.v2:12 ", ("web_1.v2", 12)),
        (b"app", None),
        (b"app:", None),
        (b":3", None),
        (b"app:x", None),
        (b"app:-1", None),
        (b"app:01", None),
        (b"app:1:2", None),
        (b"a pp:1", None),
        (b"app:9999999999", None),
    ],
)
def test_parse_app_instance(value: bytes, parsed: tuple[str, int] | None) -> None:
    assert parse_app_instance(value) == parsed


@pytest.mark.parametrize(
    ("cookies", "instance"),
    [
        ([b"JSESSIONID=abc; __VCAP_ID__=guid-1"], "guid-1"),
        ([b"__VCAP_ID__=guid-1", b"other=1; JSESSIONID=abc"], "guid-1"),
        ([b"__VCAP_ID__=guid-1"], None),
        ([b"JSESSIONID=abc"], None),
        ([b"JSESSIONID=abc; __VCAP_ID__="], None),
        ([], None),
    ],
)
def test_sticky_instance_needs_both_cookies(cookies: list[bytes], instance: str | None) -> None:
    assert sticky_instance(cookies) == instance


def test_the_vcap_cookie_copies_the_sessions_lifetime_and_security() -> None:
    session = session_started([b"theme=dark", b"JSESSIONID=s1; Path=/app; Max-Age=60; Secure; "
                                              b"SameSite=Lax; Domain=example.com"])
    assert session is not None
    assert vcap_cookie_header("guid-1", session) == (
        b"Set-Cookie: __VCAP_ID__=guid-1; Path=/; HttpOnly; Max-Age=60; Secure; SameSite=Lax\r\n"
    )
    assert session_started([b"theme=dark"]) is None


def test_metrics_text() -> None:
    metrics = Metrics()
    metrics.request_done("app", 200, 0.0007)
    metrics.request_done("app", 200, 0.003)
    metrics.request_done("", 404, 20.0)
    metrics.backend_errors = 2
    metrics.retries = 1
    text = metrics.render(routes=5, open_connections=3)
    assert 'router_requests_total{app="app",status="200"} 2' in text
    assert 'router_requests_total{app="",status="404"} 1' in text
    assert 'router_request_duration_seconds_bucket{le="0.0005"} 0' in text
    assert 'router_request_duration_seconds_bucket{le="0.001"} 1' in text
    assert 'router_request_duration_seconds_bucket{le="0.005"} 2' in text
    assert 'router_request_duration_seconds_bucket{le="10.0"} 2' in text
    assert 'router_request_duration_seconds_bucket{le="+Inf"} 3' in text
    assert "router_request_duration_seconds_count 3" in text
    assert "router_backend_errors_total 2" in text
    assert "router_retries_total 1" in text
    assert "router_routes 5" in text
    assert "router_open_connections 3" in text
    assert text.endswith("\n")
