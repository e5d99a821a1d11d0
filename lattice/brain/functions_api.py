"""The function endpoints of the API (on receptor.<domain>, behind the box's credentials).

    POST   /v1/functions          201 the function; 400 listing every bad field; 409 taken
    GET    /v1/functions          200 every function, by name
    GET    /v1/functions/{name}   200 the function; 404 FunctionNotFound
    DELETE /v1/functions/{name}   204; 404 FunctionNotFound

Invocations are not here: they arrive at NAME.<domain> on the brain's invocation port
(brain/invoker.py), which needs no credentials, like an app's route.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web

from lattice.brain import routes as route_rules
from lattice.brain.errors import (
    FunctionAlreadyExists,
    FunctionNotFound,
    InvalidJSON,
    InvalidRequest,
)
from lattice.brain.function_view import FunctionView
from lattice.brain.functions_db import FunctionDB
from lattice.brain.images import ImageInspector
from lattice.brain.invoker import FUNCTIONS_SERVICE
from lattice.brain.state import ClusterView
from lattice.models import FieldError, ValidationError
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


async def _body(request: web.Request) -> Any:
    try:
        return await request.json(loads=json.loads)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidJSON(f"the request body is not valid JSON: {exc}") from exc


def _route_problems(deps: FunctionApiDeps, function: Function) -> list[FieldError]:
    return route_rules.function_conflicts(
        function.hostname(deps.domain),
        domain=deps.domain,
        taken=deps.view.desired(),
        service_hostnames=deps.view.service_hostnames(excluding=FUNCTIONS_SERVICE),
    )


async def create_function(request: web.Request) -> web.Response:
    deps = _deps(request)
    data = await _body(request)
    problems: list[FieldError] = []
    image = data.get("image") if isinstance(data, dict) else None
    if (isinstance(image, str) and image.strip()
            and (await deps.images.inspect(image.strip())).exists is False):
        problems.append(FieldError("image", f"image {image!r} not found on the box"))
    function = None
    try:
        function = parse_function(data, deps.clock())
    except ValidationError as exc:
        problems = exc.errors + problems
    if function is not None:
        problems += _route_problems(deps, function)
    if problems or function is None:
        raise InvalidRequest("invalid function", problems)
    if not await deps.db.create(function):
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
