"""The status port: health, metrics and the route table, on their own listener.

It is a separate aiohttp server, so no Host header can reach it through the routing port.

    /health    200 once the route table is loaded, 503 while draining (open)
    /metrics   Prometheus text (open: counters, no secrets)
    /routes    the table as JSON, behind the box's credentials (open if the box has none)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from lattice.auth import Credentials, basic_auth_middleware
from router.pool import Endpoint


@dataclass(frozen=True, kw_only=True)
class StatusSources:
    """What the status pages read; callables, so that the pages always show the current state."""

    ready: Callable[[], bool]           # the table is loaded and the router is not draining
    draining: Callable[[], bool]
    metrics: Callable[[], str]
    routes: Callable[[], dict[str, tuple[Endpoint, ...]]]


def status_app(sources: StatusSources, credentials: Credentials | None) -> web.Application:
    app = web.Application(
        middlewares=[basic_auth_middleware(credentials, open_paths=("/health", "/metrics"))]
    )

    async def health(_: web.Request) -> web.Response:
        if sources.draining():
            return web.json_response({"status": "draining"}, status=503)
        if not sources.ready():
            return web.json_response({"status": "loading"}, status=503)
        return web.json_response({"status": "ok"})

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(text=sources.metrics(), content_type="text/plain",
                            headers={"X-Content-Type-Options": "nosniff"})

    async def routes(_: web.Request) -> web.Response:
        table = {
            host: [
                {"address": e.address, "port": e.port, "process_guid": e.process_guid,
                 "index": e.index, "instance_guid": e.instance_guid}
                for e in endpoints
            ]
            for host, endpoints in sorted(sources.routes().items())
        }
        return web.json_response(table)

    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/routes", routes)
    return app
