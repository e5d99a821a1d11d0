"""Scale to zero, the pure parts: the autoscale block's validation, the autoscaler's decisions
from a snapshot and a clock, cold-start records, and ltc's flags."""

from __future__ import annotations

import pytest

from lattice.brain.autoscale_plan import (
    AppScaling,
    combine,
    decide,
    plan_autoscale,
    scaling_state,
)
from lattice.brain.converger import Seen
from lattice.client.app_spec import CreateFlags, build_create_request, parse_create_flags
from lattice.client.autoscale_flags import AutoscaleFlags
from lattice.client.errors import InvalidInput
from lattice.models import (
    ActualLRP,
    ActualState,
    Assignment,
    ModificationTag,
    SchedulingInfo,
    ValidationError,
    parse_desired_lrp,
    parse_desired_lrp_update,
)
from lattice.models.autoscale import (
    Activity,
    Autoscale,
    ColdStarts,
    IdleMode,
    parse_autoscale,
    percentile,
)
from lattice.models.errors import Problems

S = 1_000_000_000


def fields_of(raw: object) -> set[str]:
    problems = Problems()
    parse_autoscale(problems, raw, 1000)
    return {e.field for e in problems.errors}


# -- the model ------------------------------------------------------------------------------


def test_defaults_and_round_trip() -> None:
    problems = Problems()
    scale = parse_autoscale(problems, {}, 1000)
    assert scale == Autoscale(0, 1, 60.0, IdleMode.STOP, 10)
    assert Autoscale.from_dict(scale.to_dict()) == scale
    assert parse_autoscale(problems, None, 1000) is None
    assert not problems.errors


@pytest.mark.parametrize(("raw", "fields"), [
    ({"min_instances": 3, "max_instances": 2}, {"autoscale.min_instances"}),
    ({"max_instances": 1001}, {"autoscale.max_instances"}),
    ({"max_instances": 0}, {"autoscale.max_instances"}),
    ({"min_instances": -1}, {"autoscale.min_instances"}),
    ({"idle_timeout_s": 0}, {"autoscale.idle_timeout_s"}),
    ({"idle_timeout_s": float("nan")}, {"autoscale.idle_timeout_s"}),
    ({"idle_mode": "sleep"}, {"autoscale.idle_mode"}),
    ({"target_concurrency": 0}, {"autoscale.target_concurrency"}),
    ({"bogus": 1}, {"autoscale.bogus"}),
    ("fast", {"autoscale"}),
])
def test_each_bad_field_is_named(raw: object, fields: set[str]) -> None:
    assert fields_of(raw) == fields


def test_every_bad_field_at_once() -> None:
    assert fields_of({"min_instances": "x", "max_instances": 5000, "idle_timeout_s": -1,
                      "idle_mode": 3, "target_concurrency": True}) == {
        "autoscale.min_instances", "autoscale.max_instances", "autoscale.idle_timeout_s",
        "autoscale.idle_mode", "autoscale.target_concurrency"}


def test_create_starts_with_one_instance_within_the_range() -> None:
    lrp = parse_desired_lrp({"process_guid": "f", "image": "i",
                             "autoscale": {"min_instances": 0, "max_instances": 4}}, epoch="e")
    assert lrp.scheduling.instances == 1
    assert lrp.scheduling.to_dict()["autoscale"]["max_instances"] == 4
    with pytest.raises(ValidationError) as caught:
        parse_desired_lrp({"process_guid": "f", "image": "i", "instances": 5,
                           "autoscale": {"max_instances": 4}}, epoch="e")
    assert [e.field for e in caught.value.errors] == ["instances"]


def test_old_records_read_without_autoscale_and_write_the_same() -> None:
    info = SchedulingInfo("a", 1, 64, 0, 100, (), ModificationTag("e"))
    data = info.to_dict()
    assert "autoscale" not in data
    assert SchedulingInfo.from_dict(data).autoscale is None
    actual = ActualLRP("a", 0, "g", ActualState.RUNNING, 1)
    assert "paused" not in actual.to_dict()
    assert ActualLRP.from_dict({**actual.to_dict(), "paused": True}).paused
    assignment = Assignment("a", 0, "g", 64, 0, 100)
    assert "paused" not in assignment.to_dict()
    assert Assignment.from_dict(assignment.to_dict()) == assignment


def test_update_sets_or_removes_the_block_and_clamps_instances() -> None:
    info = SchedulingInfo("a", 5, 64, 0, 100, (), ModificationTag("e"))
    update = parse_desired_lrp_update({"autoscale": {"min_instances": 0, "max_instances": 2}},
                                      (8080,))
    changed = update.apply(info)
    assert changed.autoscale == Autoscale(0, 2)
    assert changed.instances == 2
    removed = parse_desired_lrp_update({"autoscale": None}, (8080,)).apply(changed)
    assert removed.autoscale is None


# -- the decisions --------------------------------------------------------------------------


def app(instances: int, states: list[tuple[ActualState, int, bool]], *, in_flight: int = 0,
        last_request_s: float = 0, scale: Autoscale | None = None) -> AppScaling:
    info = SchedulingInfo("f", instances, 64, 0, 100, (), ModificationTag("e", 7),
                          autoscale=scale or Autoscale(0, 3, 10.0, IdleMode.STOP, 2))
    seen = tuple(
        Seen(ActualLRP("f", i, f"g{i}", state, since_s * S, cell_id="c", paused=paused), 1)
        for i, (state, since_s, paused) in enumerate(states)
    )
    return AppScaling(info, seen, Activity(int(last_request_s * S), in_flight))


RUNNING_SINCE_0 = (ActualState.RUNNING, 0, False)


def test_idle_for_the_timeout_scales_to_min() -> None:
    decision, _ = decide(app(1, [RUNNING_SINCE_0], last_request_s=5), 15 * S)
    assert decision is not None
    assert (decision.set_instances, decision.pause, decision.modification_tag_index) == (0, [], 7)


def test_not_idle_yet_says_when_to_look_again() -> None:
    decision, wake_at = decide(app(1, [RUNNING_SINCE_0], last_request_s=5), 14 * S)
    assert decision is None
    assert wake_at == 15 * S


def test_a_new_instance_gets_a_whole_timeout_and_a_starting_one_is_never_idle() -> None:
    assert decide(app(1, [(ActualState.RUNNING, 20, False)]), 25 * S) == (None, 30 * S)
    assert decide(app(1, [(ActualState.CLAIMED, 0, False)]), 99 * S) == (None, None)
    assert decide(app(1, []), 99 * S) == (None, None)       # woken: record not written yet


def test_requests_in_flight_keep_it_and_scale_up_to_max() -> None:
    decision, _ = decide(app(1, [RUNNING_SINCE_0], in_flight=5), 99 * S)
    assert decision is not None
    assert decision.set_instances == 3          # ceil(5 / 2), and max is 3
    decision, _ = decide(app(1, [RUNNING_SINCE_0], in_flight=100), 99 * S)
    assert decision is not None
    assert decision.set_instances == 3
    assert decide(app(3, [RUNNING_SINCE_0] * 3, in_flight=1), 99 * S) == (None, None)


def test_a_request_to_an_app_at_zero_scales_it_to_one() -> None:
    decision, _ = decide(app(0, [], in_flight=1), 99 * S)
    assert decision is not None
    assert decision.set_instances == 1


def test_pause_mode_keeps_one_instance_and_pauses_it() -> None:
    scale = Autoscale(0, 3, 10.0, IdleMode.PAUSE, 2)
    decision, _ = decide(app(2, [RUNNING_SINCE_0] * 2, scale=scale), 99 * S)
    assert decision is not None
    assert decision.set_instances == 1
    assert [s.actual.index for s in decision.pause] == [0]
    # Already paused: nothing to do.
    assert decide(app(1, [(ActualState.RUNNING, 0, True)], scale=scale), 99 * S) == (None, None)
    # min 1 in pause mode: the minimum stays warm, nothing is paused.
    warm = Autoscale(1, 3, 10.0, IdleMode.PAUSE, 2)
    assert decide(app(1, [RUNNING_SINCE_0], scale=warm), 99 * S) == (None, None)


def test_plan_collects_decisions_and_the_earliest_wake() -> None:
    plan = plan_autoscale([app(1, [RUNNING_SINCE_0], last_request_s=5),
                           app(1, [RUNNING_SINCE_0], last_request_s=1)], 12 * S)
    assert [d.set_instances for d in plan.decisions] == [0]
    assert plan.wake_at_ns == 15 * S


def test_activity_of_several_routers_adds_up() -> None:
    assert combine([Activity(5, 2), Activity(9, 1)]) == Activity(9, 3)


def test_scaling_state() -> None:
    scaled = app(0, [])
    assert scaling_state(scaled.info, scaled.instances) == "idle (scaled to zero)"
    paused = app(1, [(ActualState.RUNNING, 0, True)])
    assert scaling_state(paused.info, paused.instances) == "paused"
    active = app(1, [RUNNING_SINCE_0])
    assert scaling_state(active.info, active.instances) == "active"
    cold = app(1, [(ActualState.CLAIMED, 0, False)])
    assert scaling_state(cold.info, cold.instances) == "starting"


def test_cold_start_records_keep_the_recent_ones() -> None:
    starts = ColdStarts()
    for ms in range(60):
        starts = starts.recorded("start", float(ms))
    starts = starts.recorded("wake", 12.0)
    assert (starts.count, starts.wakes, starts.last_kind) == (60, 1, "wake")
    assert len(starts.recent_ms) == 50
    assert percentile(starts.recent_ms, 0.5) == 34.0
    assert ColdStarts.from_dict(starts.to_dict()) == starts


# -- ltc's flags ----------------------------------------------------------------------------


def test_create_flags_build_the_block() -> None:
    spec, _ = parse_create_flags(CreateFlags(name="f", image="i", autoscale=AutoscaleFlags(
        min_instances=0, max_instances=3, idle_timeout="90s", idle_mode="pause")))
    body = build_create_request(spec, "lattice.localhost")
    assert body["instances"] == 1
    assert body["autoscale"] == {"min_instances": 0, "max_instances": 3, "idle_timeout_s": 90.0,
                                 "idle_mode": "pause", "target_concurrency": 10}
    plain, _ = parse_create_flags(CreateFlags(name="f", image="i"))
    assert "autoscale" not in build_create_request(plain, "lattice.localhost")


def test_bad_create_flags_are_all_named() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_create_flags(CreateFlags(name="f", image="i", autoscale=AutoscaleFlags(
            min_instances=4, max_instances=2, idle_timeout="soon", idle_mode="nap",
            target_concurrency=0)))
    assert {f.field for f in caught.value.fields} == {
        "min-instances", "idle-timeout", "idle-mode", "target-concurrency", "instances"}
