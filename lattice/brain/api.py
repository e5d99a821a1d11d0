"""The receptor-like HTTP API. Handlers parse, call the db, and answer; rules live elsewhere."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web

from lattice import __version__
from lattice.auth import Credentials, basic_auth_middleware
from lattice.brain import routes as route_rules
from lattice.brain.controller import Clock
from lattice.brain.db import LRPDB
from lattice.brain.errors import (
    ApiError,
    DesiredLRPAlreadyExists,
    DesiredLRPNotFound,
    InvalidRequest,
    ModificationConflict,
    ServiceUnavailable,
    UnknownError,
)
from lattice.brain.images import ImageInspector
from lattice.brain.invoker import FUNCTIONS_SERVICE
from lattice.brain.json_requests import json_body
from lattice.brain.route_claims import RouteOwners
from lattice.brain.state import ClusterView
from lattice.models import (
    FieldError,
    Route,
    ValidationError,
    parse_desired_lrp,
    parse_desired_lrp_update,
)
from lattice.models.metrics import InstanceMetrics, current_metrics
from lattice.store import StoreError

log = structlog.get_logger("lattice.brain.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, kw_only=True)
class ApiDeps:
    db: LRPDB
    view: ClusterView
    images: ImageInspector
    domain: str
    clock: Clock


DEPS = web.AppKey("deps", ApiDeps)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, indent=None))


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return _json(exc.to_dict(), exc.status)
    except StoreError as exc:
        log.warning("store-unavailable", path=request.path, error=str(exc))
        unavailable = ServiceUnavailable(f"the store is unavailable: {exc}")
        return _json(unavailable.to_dict(), unavailable.status)
    except web.HTTPException:
        raise
    except Exception as exc:  # the last guard: a bug answers 500 and is logged
        log.exception("api-unexpected-error", path=request.path)
        error = UnknownError(f"unexpected error: {exc}")
        return _json(error.to_dict(), error.status)


def _deps(request: web.Request) -> ApiDeps:
    return request.app[DEPS]


def _route_conflicts(
    deps: ApiDeps, guid: str, routes: Sequence[Route], owners: RouteOwners
) -> list[FieldError]:
    """Why app `guid` may not route `routes`, on owners read from etcd (brain/route_claims.py):
    the box's hosts and other services' come from the view (they are not claimed by writes
    of this API), apps and functions from `owners`, which a cache lagging etcd cannot be."""
    return route_rules.conflicts(
        routes,
        process_guid=guid,
        domain=deps.domain,
        taken=owners.apps,
        service_hostnames=deps.view.service_hostnames(excluding=FUNCTIONS_SERVICE),
        functions=owners.function_routes(deps.domain),
    )


def _names_routes(data: Any) -> bool:
    routes = data.get("routes") if isinstance(data, dict) else None
    return isinstance(routes, list) and bool(routes)


async def _image_facts(deps: ApiDeps, data: Any) -> tuple[list[FieldError], tuple[int, ...]]:
    """The problem with the body's image, if any, and the ports it exposes."""
    image = data.get("image") if isinstance(data, dict) else None
    if not isinstance(image, str) or not image.strip():
        return [], ()     # parse_desired_lrp names a missing or empty image
    facts = await deps.images.inspect(image.strip())
    if facts.exists is False:
        return [FieldError("image", f"image {image!r} not found on the box")], ()
    return [], facts.exposed_ports


async def _settled(read: asyncio.Future[RouteOwners] | None) -> None:
    """Stop a read whose answer is not needed, and take its error if it failed."""
    if read is not None:
        read.cancel()
        with contextlib.suppress(asyncio.CancelledError, StoreError):
            await read


async def create_desired_lrp(request: web.Request) -> web.Response:
    deps = _deps(request)
    data = await json_body(request)
    # The route owners are read from etcd while the Docker engine is asked about the image:
    # both are waits on other processes, and the owners do not depend on the image. They are
    # used only if the body turns out valid; a failed read then answers 503, as before.
    owners_read = (asyncio.ensure_future(deps.db.route_owners()) if _names_routes(data)
                   else None)
    try:
        problems, image_ports = await _image_facts(deps, data)
        lrp = None
        try:
            lrp = parse_desired_lrp(data, epoch=uuid.uuid4().hex, image_ports=image_ports)
        except ValidationError as exc:
            problems = exc.errors + problems
        owners = None
        if lrp is not None and lrp.scheduling.routes:
            owners = await (owners_read if owners_read is not None
                            else deps.db.route_owners())
            owners_read = None
            problems += _route_conflicts(deps, lrp.process_guid, lrp.scheduling.routes, owners)
    finally:
        await _settled(owners_read)
    if problems or lrp is None:
        raise InvalidRequest("invalid desired LRP", problems)
    if owners is None:
        created = await deps.db.create_desired(lrp, deps.clock())
    else:
        parsed = lrp
        created = await deps.db.claim_routes(
            lambda fresh: _route_conflicts(deps, parsed.process_guid, parsed.scheduling.routes,
                                           fresh),
            lambda revision: deps.db.create_desired(parsed, deps.clock(), route_claim=revision),
            what="desired LRP", owners=owners,
        )
    if not created:
        raise DesiredLRPAlreadyExists(f"an app named {lrp.process_guid!r} already exists")
    log.info("desired-lrp-created", app=lrp.process_guid, instances=lrp.scheduling.instances)
    return _json(lrp.to_dict(), 201)


async def list_desired_lrps(request: web.Request) -> web.Response:
    return _json([lrp.to_dict() for lrp in await _deps(request).db.list_desired()])


async def get_desired_lrp(request: web.Request) -> web.Response:
    guid = request.match_info["process_guid"]
    lrp = await _deps(request).db.get_desired(guid)
    if lrp is None:
        raise DesiredLRPNotFound(f"no app named {guid!r}")
    return _json(lrp.to_dict())


async def update_desired_lrp(request: web.Request) -> web.Response:
    deps = _deps(request)
    guid = request.match_info["process_guid"]
    data = await json_body(request)
    lrp = await deps.db.get_desired(guid)
    found = await deps.db.get_scheduling(guid)
    if lrp is None or found is None:
        raise DesiredLRPNotFound(f"no app named {guid!r}")
    info, revision = found
    try:
        update = parse_desired_lrp_update(data, lrp.run.ports)
    except ValidationError as exc:
        raise InvalidRequest("invalid update", exc.errors) from exc
    scale = None if update.remove_autoscale else (update.autoscale or info.autoscale)
    if update.instances is not None and scale is not None and (
        scale.clamp(update.instances) != update.instances
    ):
        raise InvalidRequest("invalid update", [FieldError(
            "instances", f"must be between autoscale.min_instances ({scale.min_instances}) "
                         f"and autoscale.max_instances ({scale.max_instances}), "
                         f"got {update.instances}")])
    if update.image is not None and update.image != lrp.run.image:
        facts = await deps.images.inspect(update.image)
        if facts.exists is False:
            raise InvalidRequest("invalid update", [
                FieldError("image", f"image {update.image!r} not found on the box")
            ])
    if update.routes is None:
        updated = await deps.db.update_desired(guid, info, revision, update, lrp.run)
    else:
        routes = update.routes
        updated = await deps.db.claim_routes(
            lambda owners: _route_conflicts(deps, guid, routes, owners),
            lambda claim: deps.db.update_desired(guid, info, revision, update, lrp.run,
                                                 route_claim=claim),
            what="update",
        )
    if not updated:
        raise ModificationConflict(f"{guid!r} was changed concurrently; retry")
    log.info("desired-lrp-updated", app=guid, instances=update.instances,
             rolling=update.apply_run(lrp.run, info) is not None)
    return web.Response(status=204)


async def delete_desired_lrp(request: web.Request) -> web.Response:
    deps = _deps(request)
    guid = request.match_info["process_guid"]
    if await deps.db.get_scheduling(guid) is None:
        raise DesiredLRPNotFound(f"no app named {guid!r}")
    await deps.db.delete_desired(guid)
    log.info("desired-lrp-removed", app=guid)
    return web.Response(status=204)


async def list_actual_lrps(request: web.Request) -> web.Response:
    guid = request.match_info.get("process_guid")
    db = _deps(request).db
    found, samples = await db.list_actual_with_metrics(guid)
    return _json([
        {**actual.to_dict(), "metrics": _metrics_dict(current_metrics(actual, samples))}
        for actual, _ in found
    ])


def _metrics_dict(sample: InstanceMetrics | None) -> dict[str, Any] | None:
    return None if sample is None else sample.to_dict()


async def list_cells(request: web.Request) -> web.Response:
    view = _deps(request).view
    snapshot = view.snapshot(cells_trusted=True)
    presences = view.cell_presences()
    cells = []
    for load in view.cell_loads(snapshot):
        presence = presences[load.cell_id]
        cells.append(
            {
                **presence.to_dict(),
                "used": {
                    "memory_mb": load.used_memory_mb,
                    "disk_mb": load.used_disk_mb,
                    "containers": load.used_containers,
                },
                "instances_by_app": load.instances_by_app,
            }
        )
    return _json(cells)


async def info(request: web.Request) -> web.Response:
    return _json({"version": __version__, "domain": _deps(request).domain})


async def health(_: web.Request) -> web.Response:
    return _json({"status": "ok"})


def create_app(deps: ApiDeps, *, credentials: Credentials | None = None) -> web.Application:
    # Authentication first: a request without the box's credentials reaches no handler.
    app = web.Application(
        middlewares=[basic_auth_middleware(credentials), errors_middleware],
        client_max_size=4 * 1024 * 1024,
    )
    app[DEPS] = deps
    app.router.add_post("/v1/desired_lrps", create_desired_lrp)
    app.router.add_get("/v1/desired_lrps", list_desired_lrps)
    app.router.add_get("/v1/desired_lrps/{process_guid}", get_desired_lrp)
    app.router.add_put("/v1/desired_lrps/{process_guid}", update_desired_lrp)
    app.router.add_delete("/v1/desired_lrps/{process_guid}", delete_desired_lrp)
    app.router.add_get("/v1/actual_lrps", list_actual_lrps)
    app.router.add_get("/v1/actual_lrps/{process_guid}", list_actual_lrps)
    app.router.add_get("/v1/cells", list_cells)
    app.router.add_get("/v1/info", info)
    app.router.add_get("/health", health)
    return app
