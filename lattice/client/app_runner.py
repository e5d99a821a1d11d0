"""What ltc does with apps: create, scale and wait, remove, and the facts for list and status.

No formatting here: the CLI turns these results into text or JSON.

Waiting polls `GET /v1/actual_lrps/{app}` (every 0.05 s by default) until every wanted index is
RUNNING and no extra index is left, and fails early when the outcome is already known: an
instance that cannot be placed, or one that keeps crashing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from lattice.client.app_spec import AppSpec, build_create_request, check_app_name, check_instances
from lattice.client.errors import (
    InstanceProblem,
    InstancesCrashed,
    PlacementFailed,
    WaitFailed,
    WaitTimedOut,
)
from lattice.client.receptor import ReceptorClient
from lattice.client.target import Target
from lattice.models import ActualLRP, ActualState, DesiredLRP
from lattice.models.metrics import InstanceMetrics

POLL_INTERVAL_S = 0.05
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
) -> list[ActualLRP]:
    """Poll until `desired` instances are RUNNING; the instances, or a WaitFailed."""
    deadline = clock() + timeout_s
    reported: tuple[object, ...] | None = None
    while True:
        actuals = sorted(await fetch(), key=lambda a: a.index)
        verdict = assess(app, actuals, desired, crash_limit)
        # Report changes only: a poll every 0.05 s must not mean a line every 0.05 s.
        seen = (verdict.running, tuple((a.index, a.state, a.crash_count) for a in actuals))
        if on_progress is not None and seen != reported:
            on_progress(Progress(app, verdict.running, desired, tuple(actuals)))
            reported = seen
        if verdict.failure is not None:
            raise verdict.failure
        if verdict.done:
            return actuals
        if clock() >= deadline:
            raise WaitTimedOut(app, verdict.running, desired, timeout_s)
        await asyncio.sleep(min(poll_interval_s, max(0.0, deadline - clock())))


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
    ) -> None:
        self._api = api
        self._target = target
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
        return await wait_until_running(
            lambda: self._api.actual_lrps(app),
            app,
            instances,
            timeout_s=timeout_s,
            on_progress=on_progress,
            poll_interval_s=self._poll_interval_s,
            crash_limit=self._crash_limit,
        )

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
