"""`lattice router`: the route table, kept from etcd, in front of the proxy.

`RouterServer` owns the lifecycle; `serve` runs one until cancelled. Start: informers, wait for
the first list of each (so no request sees an empty table), then listen. Stop, in order (see
STYLE.md 11): stop accepting; let requests in flight finish within `shutdown_grace_s`; cut what
remains; stop the informers; close etcd.

Works on any asyncio loop; the CLI installs uvloop first, which is what makes it fast.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from aiohttp import web

from lattice.auth import Credentials
from lattice.store import Etcd, Informer
from logagg.publisher import LogPublisher
from router.activation import Activator
from router.applogs import AppLogs
from router.config import RouterConfig
from router.leastconnection import InFlight, LeastConnection
from router.pool import Balancer
from router.proxy import Proxy
from router.roundrobin import RoundRobin
from router.status import StatusSources, status_app
from router.table import RouteTable

log = structlog.get_logger("router")

LISTEN_BACKLOG = 1024
CANCEL_RETRY_S = 0.2
INFORMER_RESTART_S = 0.5


class RouterServer:
    def __init__(self, config: RouterConfig, *, credentials: Credentials | None = None) -> None:
        """`credentials`: the box's, which guard the status port's /routes."""
        self.config = config
        self.credentials = credentials
        in_flight = InFlight()

        def new_balancer() -> Balancer:
            if config.balancing == "least-connections":
                return LeastConnection(in_flight)
            return RoundRobin()

        self.table = RouteTable(new_balancer)
        self._etcd: Etcd | None = None
        self._publisher: LogPublisher | None = None
        self._publisher_task: asyncio.Task[None] | None = None
        self._app_logs_task: asyncio.Task[None] | None = None
        self.proxy = Proxy(self.table, config, in_flight=in_flight)
        self.activator = Activator(
            hold_timeout_s=config.cold_start_timeout_s,
            service_addresses=self.table.service_addresses,
            has_paused=self.table.has_paused,
            in_flight=in_flight.of,
            credentials=credentials,
        )
        self.proxy.activator = self.activator
        self.table.on_pool_ready = self.activator.on_pool_ready
        self.table.on_instance_paused = self.activator.on_instance_paused
        self._status_runner: web.AppRunner | None = None
        self._status_port: int | None = None
        self._loaded = False
        self._informers: list[Informer] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._server: asyncio.Server | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The port listened on (the one picked when the config says 0)."""
        if self._port is None:
            raise RuntimeError("the router is not listening yet: call start() first")
        return self._port

    @property
    def status_port(self) -> int:
        if self._status_port is None:
            raise RuntimeError("no status port: none configured, or not started")
        return self._status_port

    @property
    def etcd_connected(self) -> bool:
        """False while any informer's watch is down (the table may be stale, but it serves)."""
        return bool(self._informers) and all(i.connected for i in self._informers)

    async def start(self) -> None:
        """Load the route table from etcd, then listen. Waits as long as etcd is unreachable."""
        self._etcd = Etcd(self.config.etcd_endpoints)
        self._informers = self.table.informers(self._etcd)
        self._tasks = [
            asyncio.create_task(_keep_running(informer)) for informer in self._informers
        ]
        # RTR lines go to the log aggregator; emit never blocks, so requests never wait on it.
        self._publisher = LogPublisher(self._etcd, credentials=self.credentials)
        self.proxy.app_logs = AppLogs(self._publisher)
        self._publisher_task = asyncio.create_task(self._publisher.run())
        self._app_logs_task = asyncio.create_task(self.proxy.app_logs.run())
        self.activator.start(self._etcd)
        if self.config.status_port is not None:
            await self._start_status()
        await asyncio.gather(*(informer.synced.wait() for informer in self._informers))
        self._loaded = True
        loop = asyncio.get_running_loop()
        self.proxy.start()
        self._server = await loop.create_server(
            self.proxy.protocol_factory,
            self.config.host,
            self.config.port,
            backlog=LISTEN_BACKLOG,
            reuse_address=True,
            reuse_port=self.config.reuse_port,
        )
        self._port = int(self._server.sockets[0].getsockname()[1])
        log.info(
            "router-started",
            host=self.config.host,
            port=self._port,
            routes=len(self.table.snapshot()),
        )

    async def _start_status(self) -> None:
        assert self.config.status_port is not None
        sources = StatusSources(
            ready=lambda: self._loaded and not self.proxy.shutting_down,
            draining=lambda: self.proxy.shutting_down,
            metrics=lambda: self.proxy.metrics.render(
                routes=len(self.table.snapshot()),
                open_connections=len(self.proxy.connections),
            ),
            routes=self.table.snapshot,
        )
        runner = web.AppRunner(status_app(sources, self.credentials), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.config.status_host, self.config.status_port,
                           reuse_port=self.config.reuse_port)
        await site.start()
        self._status_runner = runner
        self._status_port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop accepting, drain within the grace period, then release in reverse order."""
        if self._server is not None:
            self._server.close()
        await self.proxy.drain(self.config.shutdown_grace_s)
        await self.activator.stop()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        if self._status_runner is not None:
            await self._status_runner.cleanup()
            self._status_runner = None
        if self._app_logs_task is not None:
            self._app_logs_task.cancel()     # flushes the last lines as it ends
            with contextlib.suppress(asyncio.CancelledError):
                await self._app_logs_task
            self._app_logs_task = None
        if self._publisher is not None:
            await self._publisher.flush(1.0)
        if self._publisher_task is not None:
            self._publisher_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._publisher_task
            self._publisher_task = None
        await _cancel_until_done(self._tasks)
        self._tasks = []
        if self._etcd is not None:
            await self._etcd.close()
            self._etcd = None
        log.info("router-stopped")


async def _keep_running(informer: Informer) -> None:
    """Run `informer`, starting it again if it dies.

    Informer.run handles StoreError itself, but an error the store does not translate (aetcd's
    WatchTimeoutError from setting up a watch while etcd restarts) ends it; the table would then
    silently stop changing. Its cached items survive, so a new run() relists and reports only
    what differs.
    """
    while True:
        try:
            await informer.run()
        except Exception as exc:  # noqa: BLE001 - any escape means the same: log, relist, go on
            log.error("informer-crashed", prefix=informer.prefix, error=repr(exc))
            await asyncio.sleep(INFORMER_RESTART_S)


async def _cancel_until_done(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel `tasks` and wait until every one has ended.

    Cancelling once is not always enough: a cancellation that lands while aetcd sets up or
    tears down a watch can be lost (seen here about once in 20 stops right after start: the
    informer went on watching). So cancel again until the task has really ended.
    """
    for task in tasks:
        task.cancel()
    pending = {task for task in tasks if not task.done()}
    while pending:
        _, pending = await asyncio.wait(pending, timeout=CANCEL_RETRY_S)
        for task in pending:
            task.cancel()
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            log.error("informer-failed", error=repr(task.exception()))


async def serve(
    config: RouterConfig,
    *,
    ready: asyncio.Event | None = None,
    credentials: Credentials | None = None,
) -> None:
    """Run the router until cancelled; `ready` is set once it listens with a loaded table."""
    server = RouterServer(config, credentials=credentials)
    try:
        await server.start()
        if ready is not None:
            ready.set()
        await asyncio.Event().wait()
    finally:
        await server.stop()
