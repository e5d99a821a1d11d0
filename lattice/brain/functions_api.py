"""The function endpoints of the API (on receptor.<domain>, behind the box's credentials).

    POST   /v1/functions          201 the function; 400 listing every bad field; 409 taken
    GET    /v1/functions          200 every function, by name
    GET    /v1/functions/{name}   200 the function; 404 FunctionNotFound
    DELETE /v1/functions/{name}   204; 404 FunctionNotFound

Invocations are not here: they arrive at NAME.<domain> on the brain's invocation port
(brain/invoker.py), which needs no credentials, like an app's route.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import structlog
from aiohttp import web

from lattice.brain import routes as route_rules
from lattice.brain.errors import FunctionAlreadyExists, FunctionNotFound
from lattice.brain.function_view import FunctionView
from lattice.brain.functions_db import FunctionDB
from lattice.brain.images import ImageInspector
from lattice.brain.invoker import FUNCTIONS_SERVICE
from lattice.brain.json_requests import parse_create_body
from lattice.brain.route_claims import RouteOwners
from lattice.brain.state import ClusterView
from lattice.models import FieldError
from lattice.models.function import Function, parse_function

log = structlog.get_logger("lattice.brain.functions_api")


@dataclass(frozen=True, kw_only=True)
class FunctionApiDeps:
    db: FunctionDB
    functions: FunctionView
    view: ClusterView
    images: ImageInspector
    domain: str
    clock: Callable[[], int]


FUNCTION_DEPS = web.AppKey("function_deps", FunctionApiDeps)


def _deps(request: web.Request) -> FunctionApiDeps:
    return request.app[FUNCTION_DEPS]


def _route_problems(
    deps: FunctionApiDeps, function: Function, owners: RouteOwners
) -> list[FieldError]:
    """On the apps read from etcd, not the view's cache (brain/route_claims.py)."""
    return route_rules.function_conflicts(
        function.hostname(deps.domain),
        domain=deps.domain,
        taken=owners.apps,
        service_hostnames=deps.view.service_hostnames(excluding=FUNCTIONS_SERVICE),
    )


async def create_function(request: web.Request) -> web.Response:
    deps = _deps(request)
    owners = await deps.db.route_owners()
    function = await parse_create_body(
        request, lambda data: parse_function(data, deps.clock()), images=deps.images,
        what="function", conflicts=lambda parsed: _route_problems(deps, parsed, owners),
    )
    if not await deps.db.claim_routes(
        lambda fresh: _route_problems(deps, function, fresh),
        lambda revision: deps.db.create(function, route_claim=revision),
        what="function", owners=owners,
    ):
        raise FunctionAlreadyExists(f"a function named {function.name!r} already exists")
    log.info("function-created", function=function.name, image=function.image)
    return web.json_response(function.to_dict(), status=201)


async def list_functions(request: web.Request) -> web.Response:
    return web.json_response([f.to_dict() for f in await _deps(request).db.list_functions()])


async def get_function(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    function = await _deps(request).db.get(name)
    if function is None:
        raise FunctionNotFound(f"no function named {name!r}")
    return web.json_response(function.to_dict())


async def delete_function(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if not await _deps(request).db.remove(name):
        raise FunctionNotFound(f"no function named {name!r}")
    log.info("function-removed", function=name)
    return web.Response(status=204)


def register_function_routes(app: web.Application, deps: FunctionApiDeps) -> None:
    app[FUNCTION_DEPS] = deps
    app.router.add_post("/v1/functions", create_function)
    app.router.add_get("/v1/functions", list_functions)
    app.router.add_get("/v1/functions/{name}", get_function)
    app.router.add_delete("/v1/functions/{name}", delete_function)
