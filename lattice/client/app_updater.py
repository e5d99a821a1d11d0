"""`ltc update` and `ltc submit-lrp`: flags to an update request, and waiting for a rollout.

A change of image or env makes the brain roll the instances over to a new run version, one at
a time (see `lattice.brain.converger`); `wait_until_updated` polls until every wanted index
runs that version and is RUNNING, and the rollout's spare instance is gone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lattice.client.app_runner import CRASH_LIMIT, POLL_INTERVAL_S, Progress, ProgressCallback
from lattice.client.app_spec import (
    DEFAULT_TIMEOUT_S,
    RouteSpec,
    _duration,
    check_app_name,
    check_instances,
    parse_env,
    parse_route,
    parse_syslog_drains,
)
from lattice.client.autoscale_flags import (
    AutoscaleFlags,
    check_instances_in_range,
    merged_block,
    parse_autoscale_flags,
    raise_if_any,
)
from lattice.client.errors import (
    AppAlreadyExists,
    InstanceProblem,
    InstancesCrashed,
    InvalidInput,
    WaitTimedOut,
)
from lattice.client.json_files import read_json_object_file
from lattice.client.receptor import ReceptorClient
from lattice.models import ActualLRP, ActualState, DesiredLRP, FieldError
from lattice.models.errors import Problems

UPDATABLE = ("instances", "routes", "annotation", "image", "env", "syslog_drains", "autoscale")


@dataclass(frozen=True, kw_only=True)
class UpdateFlags:
    """`ltc update`'s arguments as typed; None or empty: leave that part unchanged."""

    name: str
    instances: int | None = None
    routes: Sequence[str] = ()
    no_routes: bool = False
    share_routes: bool | None = None
    env: Sequence[str] = ()
    image: str | None = None
    timeout: str | None = None
    syslog_drains: Sequence[str] = ()
    no_syslog_drains: bool = False
    autoscale: AutoscaleFlags = field(default_factory=AutoscaleFlags)


@dataclass(frozen=True, kw_only=True)
class UpdateSpec:
    name: str
    instances: int | None = None
    routes: tuple[RouteSpec, ...] | None = None      # () with --no-routes
    share_routes: bool | None = None                 # None: as the app has them
    env: tuple[tuple[str, str], ...] | None = None   # replaces the whole env
    image: str | None = None
    syslog_drains: tuple[str, ...] | None = None    # replaces them all; () removes them
    autoscale: dict[str, Any] | None = None         # fields to set over the current block

    @property
    def rolls(self) -> bool:
        """Whether this update may replace running instances (the brain decides if it does)."""
        return self.env is not None or self.image is not None


def parse_update_flags(flags: UpdateFlags) -> tuple[UpdateSpec, float]:
    """The spec and the wait timeout; InvalidInput listing every bad flag."""
    problems = Problems()
    check_app_name(flags.name, problems)
    if flags.instances is not None:
        check_instances(flags.instances, problems)
    routes: tuple[RouteSpec, ...] | None = None
    if flags.routes:
        routes = tuple(r for text in flags.routes if (r := parse_route(text, problems)))
        if flags.no_routes:
            problems.add("http-route", "--http-route and --no-routes exclude each other")
    elif flags.no_routes:
        routes = ()
    if flags.share_routes is not None and flags.no_routes:
        problems.add("share-routes", "--share-routes and --no-routes exclude each other")
    env = None
    if flags.env:
        env = tuple(pair for item in flags.env if (pair := parse_env(item, problems)))
    image = None
    if flags.image is not None:
        image = flags.image.strip()
        if not image:
            problems.add("image", "the image name is empty")
    syslog_drains: tuple[str, ...] | None = None
    if flags.syslog_drains:
        syslog_drains = parse_syslog_drains(flags.syslog_drains, problems)
        if flags.no_syslog_drains:
            problems.add("syslog-drain", "--syslog-drain and --no-syslog-drains exclude each other")
    elif flags.no_syslog_drains:
        syslog_drains = ()
    timeout = DEFAULT_TIMEOUT_S
    if flags.timeout is not None:
        timeout = _duration(flags.timeout, problems, "timeout")
    autoscale = None
    if flags.autoscale.given():
        autoscale = parse_autoscale_flags(flags.autoscale, problems)
    if (flags.instances is None and routes is None and env is None and image is None
            and syslog_drains is None and autoscale is None and flags.share_routes is None):
        problems.add("app", "nothing to update: give --instances, --http-route, --no-routes, "
                            "--share-routes, --env, --image, --syslog-drain, "
                            "--no-syslog-drains or an "
                            "autoscaling flag (--min-instances, --max-instances, ...)")
    if problems.errors:
        raise InvalidInput(problems.errors)
    spec = UpdateSpec(name=flags.name, instances=flags.instances, routes=routes,
                      share_routes=flags.share_routes, env=env,
                      image=image, syslog_drains=syslog_drains, autoscale=autoscale)
    return spec, timeout


def build_update_request(spec: UpdateSpec, current: DesiredLRP, domain: str) -> dict[str, Any]:
    """The body of `PUT /v1/desired_lrps/APP`; a route without a port goes to the first port."""
    body: dict[str, Any] = {}
    if spec.instances is not None:
        body["instances"] = spec.instances
    if spec.autoscale is not None:
        # Checked whole, over the current block, before anything is sent.
        problems = Problems()
        block = merged_block(spec.autoscale, current.scheduling.autoscale, problems)
        if spec.instances is not None:
            check_instances_in_range(spec.instances, block, problems)
        raise_if_any(problems)
        body["autoscale"] = block
    current_routes = current.scheduling.routes
    shared = (spec.share_routes if spec.share_routes is not None
              else any(route.shared for route in current_routes))
    if spec.routes is not None:
        first = current.run.ports[0] if current.run.ports else None
        by_port: dict[int | None, list[str]] = {}
        for route in spec.routes:
            hosts = by_port.setdefault(route.port if route.port is not None else first, [])
            if route.qualified(domain) not in hosts:
                hosts.append(route.qualified(domain))
        body["routes"] = [
            {"hostnames": hosts, **({} if port is None else {"port": port}),
             **({"shared": True} if shared else {})}
            for port, hosts in by_port.items()
        ]
    elif spec.share_routes is not None:
        # Only the sharing changes: the app's routes as they are, marked (or not) shared.
        body["routes"] = [
            {"hostnames": list(route.hostnames), "port": route.port,
             **({"shared": True} if shared else {})}
            for route in current_routes
        ]
    if spec.env is not None:
        body["env"] = [{"name": name, "value": value} for name, value in spec.env]
    if spec.image is not None:
        body["image"] = spec.image
    if spec.syslog_drains is not None:
        body["syslog_drains"] = list(spec.syslog_drains)
    return body


@dataclass(frozen=True)
class RolloutView:
    running: int          # wanted indices RUNNING the desired version
    done: bool


def assess_rollout(desired: DesiredLRP, actuals: Sequence[ActualLRP]) -> RolloutView:
    """Pure: has every wanted index the desired version and RUNNING, with no spare left?"""
    count, version = desired.scheduling.instances, desired.scheduling.run_version
    current = [
        a for a in actuals
        if a.index < count and a.run_version == version and a.state == ActualState.RUNNING
    ]
    extras = any(a.index >= count for a in actuals)
    return RolloutView(len(current), len(current) == count and not extras)


def crashing(actuals: Sequence[ActualLRP], version: int,
             crash_limit: int) -> list[InstanceProblem]:
    """New-version instances that keep crashing: the rollout will not finish by itself."""
    return [
        InstanceProblem(a.index, a.crash_reason or "crashed", a.crash_count)
        for a in actuals
        if a.run_version == version and a.crash_count >= crash_limit
        and a.state != ActualState.RUNNING
    ]


async def wait_until_updated(
    api: ReceptorClient, app: str, *, timeout_s: float,
    on_progress: ProgressCallback | None = None, poll_interval_s: float = POLL_INTERVAL_S,
    crash_limit: int = CRASH_LIMIT, clock: Callable[[], float] = time.monotonic,
) -> None:
    import asyncio  # here, not at the top: `ltc create` and `ltc --help` do without it (ltc.py)

    deadline = clock() + timeout_s
    reported: object = None
    while True:
        desired = await api.desired_lrp(app)
        actuals = sorted(await api.actual_lrps(app), key=lambda a: a.index)
        view = assess_rollout(desired, actuals)
        count = desired.scheduling.instances
        seen = (view.running, tuple((a.index, a.state, a.run_version) for a in actuals))
        if on_progress is not None and seen != reported:
            on_progress(Progress(app, view.running, count, tuple(actuals)))
            reported = seen
        failing = crashing(actuals, desired.scheduling.run_version, crash_limit)
        if failing:
            raise InstancesCrashed(app, failing)
        if view.done:
            return
        if clock() >= deadline:
            raise WaitTimedOut(app, view.running, count, timeout_s)
        await asyncio.sleep(min(poll_interval_s, max(0.0, deadline - clock())))


async def update_app(
    api: ReceptorClient, spec: UpdateSpec, domain: str, *, timeout_s: float,
    on_progress: ProgressCallback | None = None,
) -> None:
    """Send the update, then wait until the app runs it everywhere."""
    current = await api.desired_lrp(spec.name)
    await api.put_desired_lrp(spec.name, build_update_request(spec, current, domain))
    await wait_until_updated(api, spec.name, timeout_s=timeout_s, on_progress=on_progress)


# -- submit-lrp ------------------------------------------------------------------------------------


def read_lrp_file(path: Path) -> dict[str, Any]:
    """The DesiredLRP in a JSON file (the API's create fields); the API validates them."""
    return read_json_object_file(path, "a DesiredLRP")


def _differs(name: str, wanted: Any, current: Mapping[str, Any]) -> bool:
    return name in current and wanted != current[name]


async def submit_lrp(
    api: ReceptorClient, lrp: Any, *, timeout_s: float,
    on_progress: ProgressCallback | None = None,
) -> tuple[str, bool]:
    """Create the DesiredLRP, or update it if it exists: (process_guid, created).

    An existing app takes the updatable fields (instances, routes, annotation, image, env); a
    file that would change any other field of it is refused, and nothing is changed. Either
    way this returns once every instance runs what the file asks for.
    """
    if not isinstance(lrp, dict):
        raise InvalidInput([FieldError("file", "must hold one JSON object: a DesiredLRP")])
    try:
        created = await api.create_desired_lrp(lrp)
    except AppAlreadyExists:
        guid = str(lrp.get("process_guid"))
    else:
        await wait_until_updated(api, created.process_guid, timeout_s=timeout_s,
                                 on_progress=on_progress)
        return created.process_guid, True
    current = (await api.desired_lrp(guid)).to_dict()
    fixed = sorted(
        name for name, value in lrp.items()
        if name not in UPDATABLE and name != "process_guid" and _differs(name, value, current)
    )
    if fixed:
        raise InvalidInput([
            FieldError(name, f"cannot change on the existing app {guid!r} (only "
                             f"{', '.join(UPDATABLE)} can); remove it and submit again")
            for name in fixed
        ])
    body = {name: lrp[name] for name in UPDATABLE if name in lrp}
    await api.put_desired_lrp(guid, body)
    await wait_until_updated(api, guid, timeout_s=timeout_s, on_progress=on_progress)
    return guid, False
