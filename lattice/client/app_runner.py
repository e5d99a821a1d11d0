"""What ltc does with apps: create, scale and wait, remove, and the facts for list and status.

No formatting here: the CLI turns these results into text or JSON.

Waiting reads `GET /v1/actual_lrps/{app}` until every wanted index is RUNNING and no extra index
is left, and fails early when the outcome is already known: an instance that cannot be placed,
or one that keeps crashing. It reads again as soon as the brain's event stream reports a change
to the app (app_events.py), and otherwise every 0.5 s while the stream is up, every 0.05 s when
there is none.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from lattice.client.app_events import EVENTS_START_TIMEOUT_S, AppEvents
from lattice.client.app_spec import AppSpec, build_create_request, check_app_name, check_instances
from lattice.client.errors import (
    InstanceProblem,
    InstancesCrashed,
    PlacementFailed,
    WaitFailed,
    WaitTimedOut,
)
from lattice.client.receptor import ReceptorClient
from lattice.client.target import Target, auth_headers
from lattice.models import ActualLRP, ActualState, DesiredLRP

if TYPE_CHECKING:
    from lattice.models.metrics import InstanceMetrics

POLL_INTERVAL_S = 0.05
# While the brain's events wake the wait, a poll is only the safety net for a missed one.
POLL_INTERVAL_WITH_EVENTS_S = 0.5
# The restart policy restarts the 1st and 2nd crash at once and backs off from the 3rd (30 s and
# more), so an instance that has crashed 3 times will not be up within any reasonable wait.
CRASH_LIMIT = 3


@dataclass(frozen=True)
class Progress:
    app: str
    running: int
    desired: int
    instances: tuple[ActualLRP, ...]


ProgressCallback = Callable[[Progress], None]
Fetch = Callable[[], Awaitable[list[ActualLRP]]]


class Changes(Protocol):
    """Reports that something may have changed (app_events.AppEvents)."""

    @property
    def alive(self) -> bool:
        """Whether changes are being reported: else the wait polls at its own pace."""
        ...

    async def next(self, timeout_s: float) -> None:
        """Return when a change was reported since the last call, or after `timeout_s`."""
        ...


class BlockingChanges(Protocol):
    """`Changes` for a plain thread (app_events.AppEvents)."""

    @property
    def alive(self) -> bool:
        ...

    def next_blocking(self, timeout_s: float) -> None:
        ...


@dataclass(frozen=True)
class Assessment:
    """Where a wait stands after one poll: done, failed (with why), or neither yet."""

    running: int
    done: bool
    failure: WaitFailed | None = None


def assess(app: str, actuals: Sequence[ActualLRP], desired: int, crash_limit: int) -> Assessment:
    """Judge one poll's instances against the wanted count. Pure."""
    wanted = [a for a in actuals if a.index < desired]
    running = sum(1 for a in wanted if a.state == ActualState.RUNNING)
    unplaced = [
        InstanceProblem(a.index, a.placement_error)
        for a in wanted
        if a.state == ActualState.UNCLAIMED and a.placement_error
    ]
    if unplaced:
        return Assessment(running, False, PlacementFailed(app, unplaced))
    crashing = [
        InstanceProblem(a.index, a.crash_reason or "crashed", a.crash_count)
        for a in wanted
        if a.crash_count >= crash_limit and a.state != ActualState.RUNNING
    ]
    if crashing:
        return Assessment(running, False, InstancesCrashed(app, crashing))
    extras = any(a.index >= desired for a in actuals)
    return Assessment(running, running == desired and not extras)


class Waiting:
    """One wait's bookkeeping, shared by the coroutine and the blocking loop below: judge each
    poll, report what changed, and say how long to pause before the next one."""

    def __init__(
        self,
        app: str,
        desired: int,
        *,
        timeout_s: float,
        on_progress: ProgressCallback | None,
        poll_interval_s: float,
        crash_limit: int,
        clock: Callable[[], float],
    ) -> None:
        self._app, self._desired, self._timeout_s = app, desired, timeout_s
        self._on_progress = on_progress
        self._poll_interval_s = poll_interval_s
        self._crash_limit = crash_limit
        self._clock = clock
        self._deadline = clock() + timeout_s
        self._reported: tuple[object, ...] | None = None

    def judge(self, fetched: list[ActualLRP]) -> list[ActualLRP] | None:
        """The instances once all of them run, None to poll again; or a WaitFailed."""
        app, desired = self._app, self._desired
        actuals = sorted(fetched, key=lambda a: a.index)
        verdict = assess(app, actuals, desired, self._crash_limit)
        # Report changes only: a poll every 0.05 s must not mean a line every 0.05 s.
        seen = (verdict.running, tuple((a.index, a.state, a.crash_count) for a in actuals))
        if self._on_progress is not None and seen != self._reported:
            self._on_progress(Progress(app, verdict.running, desired, tuple(actuals)))
            self._reported = seen
        if verdict.failure is not None:
            raise verdict.failure
        if verdict.done:
            return actuals
        if self._clock() >= self._deadline:
            raise WaitTimedOut(app, verdict.running, desired, self._timeout_s)
        return None

    def pause_s(self, events_flowing: bool) -> float:
        interval = self._poll_interval_s
        if events_flowing:
            interval = max(interval, POLL_INTERVAL_WITH_EVENTS_S)
        return min(interval, max(0.0, self._deadline - self._clock()))


async def wait_until_running(
    fetch: Fetch,
    app: str,
    desired: int,
    *,
    timeout_s: float,
    on_progress: ProgressCallback | None = None,
    poll_interval_s: float = POLL_INTERVAL_S,
    crash_limit: int = CRASH_LIMIT,
    clock: Callable[[], float] = time.monotonic,
    changes: Changes | None = None,
) -> list[ActualLRP]:
    """Poll until `desired` instances are RUNNING; the instances, or a WaitFailed.

    With `changes`, each reported change ends the pause between two polls at once."""
    import asyncio  # here, not at the top: `ltc create` runs without it (see ltc.py)

    waiting = Waiting(app, desired, timeout_s=timeout_s, on_progress=on_progress,
                      poll_interval_s=poll_interval_s, crash_limit=crash_limit, clock=clock)
    while True:
        found = waiting.judge(await fetch())
        if found is not None:
            return found
        if changes is None:
            await asyncio.sleep(waiting.pause_s(events_flowing=False))
        else:
            await changes.next(waiting.pause_s(events_flowing=changes.alive))


def wait_until_running_blocking(
    fetch: Callable[[], list[ActualLRP]],
    app: str,
    desired: int,
    *,
    timeout_s: float,
    on_progress: ProgressCallback | None = None,
    poll_interval_s: float = POLL_INTERVAL_S,
    crash_limit: int = CRASH_LIMIT,
    clock: Callable[[], float] = time.monotonic,
    changes: BlockingChanges | None = None,
) -> list[ActualLRP]:
    """`wait_until_running` without an event loop, for `ltc create`."""
    waiting = Waiting(app, desired, timeout_s=timeout_s, on_progress=on_progress,
                      poll_interval_s=poll_interval_s, crash_limit=crash_limit, clock=clock)
    while True:
        found = waiting.judge(fetch())
        if found is not None:
            return found
        if changes is None:
            time.sleep(waiting.pause_s(events_flowing=False))
        else:
            changes.next_blocking(waiting.pause_s(events_flowing=changes.alive))


@dataclass(frozen=True)
class AppSummary:
    """One row of `ltc list`."""

    desired: DesiredLRP
    running: int

    @property
    def name(self) -> str:
        return self.desired.process_guid


@dataclass(frozen=True)
class InstanceStatus:
    actual: ActualLRP
    uptime_s: float | None      # None unless RUNNING
    metrics: InstanceMetrics | None = None   # None until its cell has sampled it


@dataclass(frozen=True)
class AppStatus:
    """`ltc status APP`: the app and each of its instances, by index."""

    desired: DesiredLRP
    instances: tuple[InstanceStatus, ...]


def uptime_s(actual: ActualLRP, now_ns: int) -> float | None:
    if actual.state != ActualState.RUNNING:
        return None
    return max(0, now_ns - actual.since) / 1e9


def route_urls(desired: DesiredLRP, target: Target) -> list[str]:
    """Each route's host name as a URL through the box's router (`:80` left out)."""
    return [
        target.url_for(host) for route in desired.scheduling.routes for host in route.hostnames
    ]


class AppRunner:
    def __init__(
        self,
        api: ReceptorClient,
        target: Target,
        *,
        poll_interval_s: float = POLL_INTERVAL_S,
        crash_limit: int = CRASH_LIMIT,
        clock_ns: Callable[[], int] = time.time_ns,
        watch_events: bool = True,
    ) -> None:
        self._api = api
        self._target = target
        self._watch_events = watch_events
        self._poll_interval_s = poll_interval_s
        self._crash_limit = crash_limit
        self._clock_ns = clock_ns

    async def create(
        self, spec: AppSpec, *, timeout_s: float, on_progress: ProgressCallback | None = None
    ) -> DesiredLRP:
        """Create the app and wait until every instance is RUNNING."""
        created = await self._api.create_desired_lrp(
            build_create_request(spec, self._target.domain)
        )
        await self.wait(spec.name, created.scheduling.instances, timeout_s=timeout_s,
                        on_progress=on_progress)
        return created

    async def scale(
        self,
        app: str,
        instances: int,
        *,
        timeout_s: float,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        check_app_name(app)
        check_instances(instances)
        await self._api.update_desired_lrp(app, instances=instances)
        await self.wait(app, instances, timeout_s=timeout_s, on_progress=on_progress)

    async def wait(
        self,
        app: str,
        instances: int,
        *,
        timeout_s: float,
        on_progress: ProgressCallback | None = None,
    ) -> list[ActualLRP]:
        events = None
        if self._watch_events:
            events = AppEvents(self._api.base_url, app, auth_headers(self._target))
            await events.start(min(EVENTS_START_TIMEOUT_S, timeout_s))
        try:
            return await wait_until_running(
                lambda: self._api.actual_lrps(app),
                app,
                instances,
                timeout_s=timeout_s,
                on_progress=on_progress,
                poll_interval_s=self._poll_interval_s,
                crash_limit=self._crash_limit,
                changes=events,
            )
        finally:
            if events is not None:
                events.close()

    async def remove(self, app: str) -> None:
        check_app_name(app)
        await self._api.delete_desired_lrp(app)

    async def status(self, app: str) -> AppStatus:
        check_app_name(app)
        desired = await self._api.desired_lrp(app)
        actuals = await self._api.actual_lrps_with_metrics(app)
        now = self._clock_ns()
        return AppStatus(
            desired,
            tuple(
                InstanceStatus(a, uptime_s(a, now), metrics)
                for a, metrics in sorted(actuals, key=lambda pair: pair[0].index)
            ),
        )

    async def list_apps(self) -> list[AppSummary]:
        desired = await self._api.desired_lrps()
        running: dict[str, int] = {}
        wanted = {lrp.process_guid: lrp.scheduling.instances for lrp in desired}
        for actual in await self._api.actual_lrps():
            if actual.state == ActualState.RUNNING and actual.index < wanted.get(
                actual.process_guid, 0
            ):
                running[actual.process_guid] = running.get(actual.process_guid, 0) + 1
        return [
            AppSummary(lrp, running.get(lrp.process_guid, 0))
            for lrp in sorted(desired, key=lambda lrp: lrp.process_guid)
        ]
