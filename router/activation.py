"""Scale to zero, the router's half: hold requests for an app with no routable instance, ask
the brain to wake it, release them the moment an instance is routable; and report activity.

    request, pool empty, app scalable ─> hold(pool): one future per pool, shared by every
        request that arrives meanwhile; one wake call per app (POST .../wake to the brain,
        retried while it fails) and an activity write at once (in flight > 0: the brain
        must not scale the app down under the held requests)
    table: the pool has endpoints again ─> on_pool_ready(pool): the future is set, every held
        request goes on (no polling: the etcd watch event releases them)
    the hold bound passes first ─> the future is set False: 503 no_endpoints, "did not
        become ready in time"

Activity (requests in flight and the last request's time, per scalable app) is written to
`/lattice/v1/activity/<guid>/<router_id>` under this router's lease, at most every
FLUSH_INTERVAL_S and only when it changed; the brain's autoscaler reads it.
Cold starts (hold to release, per wake) are added to `/lattice/v1/cold_starts/<guid>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field

import aiohttp
import structlog

from lattice.auth import Credentials
from lattice.models import ActualLRP
from lattice.models.autoscale import Activity, ColdStarts
from lattice.store import Etcd, ModRevisionIs, Put, StoreError, keys
from router.pool import Endpoint, Pool

log = structlog.get_logger("router.activation")

FLUSH_INTERVAL_S = 0.25
LEASE_TTL_S = 5
WAKE_RETRY_S = 0.5
WAKE_TIMEOUT = aiohttp.ClientTimeout(total=5, sock_connect=2)
COLD_START_ATTEMPTS = 10


@dataclass
class _AppActivity:
    in_flight: int = 0
    last_request_ns: int = 0
    written: Activity = field(default_factory=Activity)


@dataclass
class _Hold:
    future: asyncio.Future[bool]
    started: float                       # loop time of the first held request
    kinds: dict[str, str]                # guid -> "start" or "wake"
    timer: asyncio.TimerHandle | None = None


class Activator:
    def __init__(
        self,
        *,
        hold_timeout_s: float,
        service_addresses: Callable[[str], list[str]],
        has_paused: Callable[[str], bool],
        in_flight: Callable[[Endpoint], int] = lambda _: 0,
        credentials: Credentials | None = None,
        router_id: str | None = None,
    ) -> None:
        self.hold_timeout_s = hold_timeout_s
        self._addresses = service_addresses
        self._has_paused = has_paused
        self._in_flight = in_flight
        self._credentials = credentials
        self.router_id = router_id or uuid.uuid4().hex[:12]
        self._apps: dict[str, _AppActivity] = {}
        self._holds: dict[int, _Hold] = {}                # id(pool) -> the pool's hold
        self._waking: dict[str, asyncio.Task[None]] = {}  # guid -> its wake call
        self._urgent = asyncio.Event()
        self._etcd: Etcd | None = None
        self._session: aiohttp.ClientSession | None = None
        self._lease: int | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, etcd: Etcd) -> None:
        self._etcd = etcd
        self._tasks = [asyncio.create_task(self._flush_forever(), name="activity-flush"),
                       asyncio.create_task(self._keep_lease(), name="activity-lease")]

    async def stop(self) -> None:
        for task in [*self._tasks, *self._waking.values(), *self._background]:
            task.cancel()
        for task in [*self._tasks, *self._waking.values(), *self._background]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks, self._waking, self._background = [], {}, set()
        for hold in self._holds.values():
            if not hold.future.done():
                hold.future.set_result(False)
        self._holds.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._lease is not None and self._etcd is not None:
            # Our activity records go with the lease: a router that left holds nothing.
            with contextlib.suppress(StoreError):
                await self._etcd.revoke_lease(self._lease)
            self._lease = None

    # -- requests (called by the proxy, on the hot path of scalable apps only) ---------------

    def request_started(self, guids: tuple[str, ...]) -> None:
        now = time.time_ns()
        for guid in guids:
            app = self._apps.get(guid)
            if app is None:
                app = self._apps[guid] = _AppActivity()
            app.in_flight += 1
            app.last_request_ns = now

    def request_ended(self, guids: tuple[str, ...]) -> None:
        now = time.time_ns()
        for guid in guids:
            app = self._apps.get(guid)
            if app is not None:
                app.in_flight = max(0, app.in_flight - 1)
                app.last_request_ns = now

    def hold(self, pool: Pool) -> asyncio.Future[bool]:
        """The future every request for this empty pool waits on: True once it has endpoints,
        False when the hold bound passes."""
        hold = self._holds.get(id(pool))
        if hold is not None:
            return hold.future
        loop = asyncio.get_running_loop()
        kinds = {g: "wake" if self._has_paused(g) else "start" for g in pool.scalable}
        hold = _Hold(loop.create_future(), loop.time(), kinds)
        hold.timer = loop.call_later(self.hold_timeout_s, self._expire, id(pool))
        self._holds[id(pool)] = hold
        self._urgent.set()      # the brain must see these requests before it scales down
        for guid in pool.scalable:
            if guid not in self._waking:
                self._waking[guid] = loop.create_task(self._wake(guid, hold.future))
        log.info("requests-held", apps=list(pool.scalable), kinds=kinds)
        return hold.future

    def on_pool_ready(self, pool: Pool) -> None:
        hold = self._holds.pop(id(pool), None)
        if hold is None:
            return
        if hold.timer is not None:
            hold.timer.cancel()
        waited_ms = (asyncio.get_running_loop().time() - hold.started) * 1000
        if not hold.future.done():
            hold.future.set_result(True)
        guids = [e.process_guid for e in pool.endpoints if e.process_guid in hold.kinds]
        for guid in dict.fromkeys(guids):
            log.info("requests-released", app=guid, kind=hold.kinds[guid],
                     waited_ms=round(waited_ms, 1))
            self._spawn(self._record_cold_start(guid, hold.kinds[guid], waited_ms))

    def on_instance_paused(self, actual: ActualLRP) -> None:
        """The brain paused an instance (the app looked idle) while this router still has
        requests on it: they were sent in the moments before the pause reached the brain. Wake
        the app at once, so that they finish instead of freezing with the container."""
        guid = actual.process_guid
        busy = sum(
            self._in_flight(Endpoint(actual.address, m.host_port, guid, actual.index,
                                     actual.instance_guid))
            for m in actual.ports
        )
        if busy and guid not in self._waking:
            log.info("paused-with-requests-in-flight", app=guid, index=actual.index,
                     in_flight=busy)
            loop = asyncio.get_running_loop()
            done: asyncio.Future[bool] = loop.create_future()
            loop.call_later(self.hold_timeout_s, _settle, done)
            self._waking[guid] = loop.create_task(self._wake(guid, done))
            self._urgent.set()      # and tell the brain now that the app is not idle

    def _expire(self, pool_id: int) -> None:
        hold = self._holds.pop(pool_id, None)
        if hold is not None and not hold.future.done():
            log.warning("requests-hold-expired", apps=list(hold.kinds),
                        seconds=self.hold_timeout_s)
            hold.future.set_result(False)

    # -- the brain ---------------------------------------------------------------------------

    async def _wake(self, guid: str, released: asyncio.Future[bool]) -> None:
        """POST wake to a brain until one accepts, or the held requests are released."""
        try:
            while not released.done():
                if await self._post_wake(guid):
                    return
                await asyncio.wait({released}, timeout=WAKE_RETRY_S)
        finally:
            self._waking.pop(guid, None)

    async def _post_wake(self, guid: str) -> bool:
        addresses = self._addresses("receptor")
        if not addresses:
            log.warning("wake-failed", app=guid, error="no brain (receptor) is registered")
            return False
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=WAKE_TIMEOUT)
        auth = None
        if self._credentials is not None:
            auth = aiohttp.BasicAuth(self._credentials.username, self._credentials.password)
        for address in addresses:
            url = f"http://{address}/v1/desired_lrps/{guid}/wake"
            try:
                async with self._session.post(url, auth=auth) as response:
                    if response.status == 202:
                        return True
                    log.warning("wake-refused", app=guid, status=response.status,
                                body=(await response.text())[:200])
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("wake-failed", app=guid, address=address, error=repr(exc))
        return False

    # -- etcd --------------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _keep_lease(self) -> None:
        while True:
            assert self._etcd is not None
            try:
                if self._lease is None or not await self._etcd.keep_alive(self._lease):
                    self._lease = await self._etcd.grant_lease(LEASE_TTL_S)
                    for app in self._apps.values():
                        app.written = Activity(-1, -1)    # rewrite under the new lease
                    self._urgent.set()
            except StoreError as exc:
                log.warning("activity-lease-failed", error=str(exc))
                self._lease = None
            await asyncio.sleep(LEASE_TTL_S / 3)

    async def _flush_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._urgent.wait(), FLUSH_INTERVAL_S)
            self._urgent.clear()
            try:
                await self.flush()
            except StoreError as exc:
                log.warning("activity-write-failed", error=str(exc))

    async def flush(self) -> None:
        """Write each app's activity that changed since it was last written."""
        if self._etcd is None or self._lease is None:
            return
        for guid, app in list(self._apps.items()):
            now = Activity(app.last_request_ns, app.in_flight)
            if now == app.written:
                continue
            await self._etcd.put(keys.activity(guid, self.router_id),
                                 json.dumps(now.to_dict()).encode(), lease=self._lease)
            app.written = now

    async def _record_cold_start(self, guid: str, kind: str, waited_ms: float) -> None:
        """Add one wait to the app's record (read, change, compare-and-swap)."""
        if self._etcd is None:
            return
        key = keys.cold_starts(guid)
        try:
            for _ in range(COLD_START_ATTEMPTS):
                kv = await self._etcd.get(key)
                starts = ColdStarts() if kv is None else ColdStarts.from_dict(json.loads(kv.value))
                value = json.dumps(starts.recorded(kind, round(waited_ms, 1)).to_dict()).encode()
                if await self._etcd.txn([ModRevisionIs(key, 0 if kv is None else kv.mod_revision)],
                                        [Put(key, value)]):
                    return
        except StoreError as exc:
            log.warning("cold-start-not-recorded", app=guid, error=str(exc))


def _settle(future: asyncio.Future[bool]) -> None:
    if not future.done():
        future.set_result(False)
