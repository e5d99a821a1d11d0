"""The scale-to-zero endpoints of the API (issue 7).

    POST /v1/desired_lrps/{guid}/wake     202 {instances_before, thawed}: at least one
                                          instance, every paused one thawed; 404; 409 if
                                          the app has no autoscale block
    GET  /v1/desired_lrps/{guid}/scaling  200 {autoscale, instances, state, activity,
                                          cold_starts}; 404

The router calls wake when a request finds an autoscaled app with no routable instance; the
wake acts at once (the converger and the auction react to its write as an event, and so does
the cell to a thaw) instead of waiting for the autoscaler's next pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from aiohttp import web

from lattice.brain.autoscale_db import AutoscaleDB, NotAutoscaled
from lattice.brain.autoscale_plan import combine, scaling_state
from lattice.brain.converger import Seen
from lattice.brain.db import LRPDB
from lattice.brain.errors import DesiredLRPNotFound, ModificationConflict
from lattice.models.autoscale import percentile

log = structlog.get_logger("lattice.brain.autoscale_api")


@dataclass(frozen=True, kw_only=True)
class AutoscaleApiDeps:
    lrps: LRPDB
    db: AutoscaleDB


AUTOSCALE_DEPS = web.AppKey("autoscale_deps", AutoscaleApiDeps)


async def wake(request: web.Request) -> web.Response:
    deps = request.app[AUTOSCALE_DEPS]
    guid = request.match_info["process_guid"]
    try:
        woken = await deps.db.wake(guid)
    except NotAutoscaled as exc:
        raise ModificationConflict(
            f"{guid!r} does not scale to zero (no autoscale): scale it with PUT instead"
        ) from exc
    if woken is None:
        raise DesiredLRPNotFound(f"no app named {guid!r}")
    before, thawed = woken
    log.info("app-wake", app=guid, instances_before=before, thawed=thawed)
    return web.json_response({"instances_before": before, "thawed": thawed}, status=202)


async def scaling(request: web.Request) -> web.Response:
    deps = request.app[AUTOSCALE_DEPS]
    guid = request.match_info["process_guid"]
    found = await deps.lrps.get_scheduling(guid)
    if found is None:
        raise DesiredLRPNotFound(f"no app named {guid!r}")
    info, _ = found
    actuals = [Seen(actual, revision) for actual, revision in await deps.lrps.list_actual(guid)]
    activity = combine(await deps.db.activity(guid))
    starts = await deps.db.cold_starts(guid)
    return web.json_response({
        "process_guid": guid,
        "autoscale": None if info.autoscale is None else info.autoscale.to_dict(),
        "instances": info.instances,
        "paused_instances": sum(1 for s in actuals if s.actual.paused),
        "state": scaling_state(info, actuals),
        "activity": activity.to_dict(),
        "cold_starts": {
            **starts.to_dict(),
            "p50_ms": percentile(starts.recent_ms, 0.5),
            "max_ms": max(starts.recent_ms, default=0.0),
            "wake_p50_ms": percentile(starts.recent_wake_ms, 0.5),
            "wake_max_ms": max(starts.recent_wake_ms, default=0.0),
        },
    })


def register_autoscale_routes(app: web.Application, deps: AutoscaleApiDeps) -> None:
    app[AUTOSCALE_DEPS] = deps
    app.router.add_post("/v1/desired_lrps/{process_guid}/wake", wake)
    app.router.add_get("/v1/desired_lrps/{process_guid}/scaling", scaling)
