"""Autoscaling, step one: from a snapshot of apps, their instances and their activity, and the
clock, decide what to scale and what to pause. Pure; no I/O (the autoscaler acts, step two).

Per app with an autoscale block (models/autoscale.py):

    in flight > target x instances          -> instances = ceil(in flight / target), up to max
    nothing in flight, and no request
    (nor a new RUNNING instance) for the
    idle timeout                             -> instances = idle count (min; in pause mode
                                                at least 1), and in pause mode with min 0 the
                                                remaining RUNNING instance is paused
    otherwise                                -> nothing; look again when the timeout ends

Load only scales up; an app comes down only once idle (Knative's scale-to-zero grace in one
rule). While an instance is starting (UNCLAIMED, CLAIMED, or not written yet) the app is not
idle: its clock starts when the instance is RUNNING.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from lattice.brain.converger import Seen
from lattice.models import ActualState, SchedulingInfo
from lattice.models.autoscale import Activity, Autoscale, IdleMode


@dataclass(frozen=True)
class AppScaling:
    info: SchedulingInfo
    instances: tuple[Seen, ...]
    activity: Activity

    @property
    def autoscale(self) -> Autoscale:
        assert self.info.autoscale is not None
        return self.info.autoscale


@dataclass
class ScaleDecision:
    process_guid: str
    modification_tag_index: int             # the scheduling info it was decided on
    set_instances: int | None = None
    pause: list[Seen] = field(default_factory=list)


@dataclass
class ScalePlan:
    decisions: list[ScaleDecision] = field(default_factory=list)
    wake_at_ns: int | None = None           # the next idle timeout to look at


def combine(activities: Iterable[Activity]) -> Activity:
    """Several routers' views of one app: in flight adds up, the latest request counts."""
    last, in_flight = 0, 0
    for activity in activities:
        last = max(last, activity.last_request_ns)
        in_flight += activity.in_flight
    return Activity(last, in_flight)


def last_active_ns(app: AppScaling) -> int:
    """The latest request, or the latest instance to become RUNNING: a new instance gets a
    whole idle timeout before it may go, even if no request has come yet."""
    became_running = [
        s.actual.since for s in app.instances if s.actual.state is ActualState.RUNNING
    ]
    return max([app.activity.last_request_ns, *became_running])


def starting(app: AppScaling) -> bool:
    """An instance is wanted but not RUNNING yet (or its record is not written yet)."""
    present = [s for s in app.instances if s.actual.index < app.info.instances]
    return len(present) < app.info.instances or any(
        s.actual.state in (ActualState.UNCLAIMED, ActualState.CLAIMED) for s in present
    )


def decide(app: AppScaling, now_ns: int) -> tuple[ScaleDecision | None, int | None]:
    """One app's decision (None: nothing to do) and when to look at it again."""
    scale, info = app.autoscale, app.info
    decision = ScaleDecision(info.process_guid, info.modification_tag.index)
    in_flight = app.activity.in_flight
    if in_flight > 0:
        needed = scale.needed_for(in_flight)
        if needed > info.instances:
            decision.set_instances = needed
            return decision, None
        return None, None
    if starting(app):
        return None, None       # a new instance gets its idle timeout once RUNNING
    idle_at = last_active_ns(app) + int(scale.idle_timeout_s * 1e9)
    if now_ns < idle_at:
        return None, idle_at
    target = scale.idle_count
    if info.instances > target:
        decision.set_instances = target
    if scale.idle_mode is IdleMode.PAUSE and scale.min_instances == 0:
        decision.pause = [
            s for s in app.instances
            if s.actual.index < target and s.actual.state is ActualState.RUNNING
            and not s.actual.paused
        ]
    if decision.set_instances is None and not decision.pause:
        return None, None
    return decision, None


def plan_autoscale(apps: Iterable[AppScaling], now_ns: int) -> ScalePlan:
    plan = ScalePlan()
    for app in apps:
        decision, wake_at = decide(app, now_ns)
        if decision is not None:
            plan.decisions.append(decision)
        if wake_at is not None and (plan.wake_at_ns is None or wake_at < plan.wake_at_ns):
            plan.wake_at_ns = wake_at
    return plan


def apps_to_scale(
    desired: Mapping[str, SchedulingInfo],
    actuals: Iterable[Seen],
    activity: Mapping[str, Activity],
) -> list[AppScaling]:
    """The snapshot the plan needs: only apps with an autoscale block."""
    by_app: dict[str, list[Seen]] = {}
    for seen in actuals:
        by_app.setdefault(seen.actual.process_guid, []).append(seen)
    return [
        AppScaling(info, tuple(by_app.get(guid, ())), activity.get(guid, Activity()))
        for guid, info in sorted(desired.items())
        if info.autoscale is not None
    ]


def scaling_state(info: SchedulingInfo, instances: Iterable[Seen]) -> str:
    """For `ltc status`: `idle (scaled to zero)`, `paused`, `starting` (no instance serves
    yet: a cold start), `active`, or `not autoscaled`."""
    if info.autoscale is None:
        return "not autoscaled"
    if info.instances == 0:
        return "idle (scaled to zero)"
    seen = list(instances)
    if seen and all(s.actual.paused for s in seen):
        return "paused"
    if not any(s.actual.state is ActualState.RUNNING and not s.actual.paused for s in seen):
        return "starting"
    return "active"
