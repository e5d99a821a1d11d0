"""Pure model rules: state transitions, the restart policy and validation of API input."""

from __future__ import annotations

import pytest

from lattice.models import (
    ActualLRP,
    ActualState,
    InvalidTransition,
    RestartPolicy,
    ValidationError,
    parse_desired_lrp,
    parse_desired_lrp_update,
)
from lattice.models.actual import allows_transition

S = ActualState
NS = 1_000_000_000


@pytest.mark.parametrize(
    ("current", "new", "allowed"),
    [
        (S.UNCLAIMED, S.CLAIMED, True),
        (S.UNCLAIMED, S.RUNNING, False),
        (S.UNCLAIMED, S.CRASHED, False),
        (S.CLAIMED, S.RUNNING, True),
        (S.CLAIMED, S.CRASHED, True),
        (S.CLAIMED, S.UNCLAIMED, True),
        (S.RUNNING, S.CRASHED, True),
        (S.RUNNING, S.CLAIMED, True),
        (S.RUNNING, S.UNCLAIMED, True),
        (S.CRASHED, S.UNCLAIMED, True),
        (S.CRASHED, S.RUNNING, False),
        (S.CRASHED, S.CLAIMED, False),
    ],
)
def test_transitions(current: ActualState, new: ActualState, allowed: bool) -> None:
    assert allows_transition(current, new) is allowed


def test_transition_sets_since_only_on_a_state_change() -> None:
    actual = ActualLRP("web", 0, "g", S.CLAIMED, since=1)
    assert actual.transition(S.CLAIMED, 5).since == 1
    assert actual.transition(S.RUNNING, 5).since == 5
    with pytest.raises(InvalidTransition):
        actual.transition(S.RUNNING, 5).transition(S.RUNNING, 6).transition(S.CRASHED, 7) \
            .transition(S.RUNNING, 8)


@pytest.mark.parametrize(
    ("crash_count", "backoff_s"),
    [
        (1, 0),
        (2, 0),
        (3, 30),
        (4, 60),
        (5, 120),
        (7, 480),
        (8, 960),       # 30 s x 2^5 = 16 min: the cap
        (9, 960),
        (200, 960),
        (201, None),    # gave up
    ],
)
def test_restart_backoff(crash_count: int, backoff_s: int | None) -> None:
    backoff = RestartPolicy().backoff_ns(crash_count)
    assert backoff == (None if backoff_s is None else backoff_s * NS)


def test_crash_count_resets_after_five_minutes_running() -> None:
    policy = RestartPolicy()
    assert policy.crash_count_after_crash(5, running_for_ns=299 * NS) == 6
    assert policy.crash_count_after_crash(5, running_for_ns=300 * NS) == 1


def test_restart_at_is_crash_time_plus_backoff() -> None:
    assert RestartPolicy().restart_at(3, 100 * NS) == 130 * NS
    assert RestartPolicy().restart_at(1, 100 * NS) == 100 * NS


def test_create_fills_lattice_defaults() -> None:
    lrp = parse_desired_lrp(
        {"process_guid": "web", "image": "img", "routes": [{"hostnames": ["web.x.localhost"]}]},
        epoch="e",
        image_ports=(9000, 9001),
    )
    assert lrp.run.ports == (9000,)
    assert lrp.run.monitor.port == 9000
    assert lrp.scheduling.routes[0].port == 9000
    assert lrp.scheduling.instances == 1
    assert lrp.scheduling.memory_mb == 128
    assert lrp.run.privileged is False


def test_create_without_exposed_port_defaults_to_8080() -> None:
    lrp = parse_desired_lrp({"process_guid": "web", "image": "img"}, epoch="e")
    assert lrp.run.ports == (8080,)


def test_no_monitor_is_kept() -> None:
    lrp = parse_desired_lrp(
        {"process_guid": "web", "image": "img", "monitor": {"port": None}}, epoch="e"
    )
    assert lrp.run.monitor.port is None


def test_validation_lists_every_bad_field() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_desired_lrp(
            {
                "process_guid": "bad name!",
                "image": "",
                "instances": -1,
                "memory_mb": -5,
                "ports": [0, 70000],
                "env": [{"name": "1BAD", "value": "x"}],
            },
            epoch="e",
        )
    fields = {error.field for error in caught.value.errors}
    assert fields == {
        "process_guid", "image", "instances", "memory_mb", "ports[0]", "ports[1]", "env[0].name"
    }


@pytest.mark.parametrize("body", [None, [], "text", 3])
def test_a_body_that_is_not_an_object_is_a_validation_error(body: object) -> None:
    with pytest.raises(ValidationError):
        parse_desired_lrp(body, epoch="e")


def test_route_on_a_port_the_app_does_not_have() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_desired_lrp(
            {"process_guid": "w", "image": "i", "ports": [8080],
             "routes": [{"hostnames": ["w.d"], "port": 9090}]},
            epoch="e",
        )
    assert [e.field for e in caught.value.errors] == ["routes[0].port"]


def test_update_refuses_fields_it_cannot_change() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_desired_lrp_update({"instances": 2, "memory_mb": 64}, ports=(8080,))
    assert [e.field for e in caught.value.errors] == ["memory_mb"]
    assert parse_desired_lrp_update({"instances": 0}, ports=(8080,)).instances == 0
