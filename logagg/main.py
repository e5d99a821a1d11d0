"""Run the log aggregator: serve its endpoints and announce it in etcd as `doppler`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from lattice.auth import Credentials, basic_auth_middleware
from lattice.models import ServiceRecord
from lattice.store import Change, Etcd, Informer, LeasedRecords, keys
from logagg.config import LogaggConfig
from logagg.drains import drains_of
from logagg.server import AGGREGATOR, close_websockets, create_app

log = structlog.get_logger("logagg")

SERVICE_NAME = "doppler"
LEASE_TTL_S = 5
# Handlers still running after the WebSockets were closed get this long before being cancelled.
SHUTDOWN_TIMEOUT_S = 5.0


async def serve(config: LogaggConfig, *, ready: asyncio.Event | None = None,
                credentials: Credentials | None = None) -> None:
    """Serve until cancelled; `ready` is set once serving and registered in etcd.

    Shutdown is ordered: stop accepting, close the WebSockets, release the lease (so the router
    stops sending here at once, not after the TTL), then clean up the runner and etcd client.
    """
    etcd = Etcd(config.etcd_endpoints)
    app = create_app(config, credentials=credentials)
    aggregator = app[AGGREGATOR]

    def on_desired_change(change: Change) -> None:
        # A key that appears after the first listing is an app created (again): crash logs
        # of an earlier app of that name are not this one's. The first listing only loads.
        app_id = change.key.removeprefix(keys.SCHEDULING)
        if apps.synced.is_set() and change.old is None and change.new is not None:
            aggregator.app_created(app_id)
        # Every change, the first listing's too: the app's syslog drains follow its desired
        # state; a removed app (new is None) has none left.
        aggregator.drains.set_drains(app_id, drains_of(change.new))

    apps: Informer = Informer(etcd, keys.SCHEDULING, on_change=on_desired_change)
    apps_task = asyncio.create_task(apps.run(), name="logagg-desired-informer")
    # First, so that nothing else runs for a request without the box's credentials.
    app.middlewares.insert(0, basic_auth_middleware(credentials))
    runner = web.AppRunner(app, access_log=None, handle_signals=False,
                           shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    site: web.TCPSite | None = None
    presence: LeasedRecords | None = None
    presence_task: asyncio.Task[None] | None = None
    try:
        await runner.setup()
        site = web.TCPSite(runner, config.host, config.port)
        await site.start()
        port = runner.addresses[0][1]
        record = ServiceRecord(
            name=SERVICE_NAME,
            instance_id=uuid.uuid4().hex,
            address=f"{config.host}:{port}",
            hostnames=(f"{SERVICE_NAME}.{config.domain}",),
        )
        server_log = log.bind(instance_id=record.instance_id, address=record.address)
        presence = LeasedRecords(
            etcd,
            {keys.service(SERVICE_NAME, record.instance_id): json.dumps(record.to_dict()).encode()},
            ttl_s=LEASE_TTL_S,
        )
        presence_task = asyncio.create_task(presence.run())
        await presence.registered.wait()
        server_log.info("logagg-started", domain=config.domain)
        if ready is not None:
            ready.set()
        # LeasedRecords.run only returns by raising: then the aggregator must not go on unseen.
        await presence_task
    finally:
        apps_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await apps_task
        await aggregator.drains.close()
        await _shut_down(site, app, presence, presence_task, runner, etcd)


async def _shut_down(site: web.TCPSite | None, app: web.Application,
                     presence: LeasedRecords | None, presence_task: asyncio.Task[None] | None,
                     runner: web.AppRunner, etcd: Etcd) -> None:
    async def stop_accepting() -> None:
        if site is not None:
            await site.stop()

    async def release_lease() -> None:
        if presence_task is not None:
            presence_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await presence_task
        if presence is not None:
            await presence.release()

    async def close_websockets_of_app() -> None:
        await close_websockets(app)

    steps: list[tuple[str, Callable[[], Awaitable[None]]]] = [
        ("stop-accepting", stop_accepting),
        ("close-websockets", close_websockets_of_app),
        ("release-lease", release_lease),
        ("cleanup-runner", runner.cleanup),
        ("close-etcd", etcd.close),
    ]
    errors: list[Exception] = []
    for name, step in steps:
        try:
            await step()
        except Exception as exc:  # noqa: BLE001 - every step must run; errors are raised below
            log.error("logagg-shutdown-step-failed", step=name, error=str(exc))
            errors.append(exc)
    log.info("logagg-stopped")
    if errors:
        raise ExceptionGroup("log aggregator shutdown failed", errors)
