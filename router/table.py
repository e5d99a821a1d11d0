"""The route table: host name -> pool of endpoints, kept current from three etcd informers.

    desired/scheduling/<guid>   SchedulingInfo.routes   which host names reach which app port
    actual/<guid>/<index>       ActualLRP               RUNNING instances, address, host ports
    services/<name>/<id>        ServiceRecord           the box's own services (receptor, doppler)

Each change touches only what it affects: an app's change recomputes that app's endpoints and
rebuilds only the pools of the host names it had or has; a service record's change rebuilds
only its host names. While etcd is unreachable the informers keep their last copy and send no
changes, so the router keeps serving the last table it had.

A route may carry a path, `host/path`: a request whose path is that path or below it (on a
segment boundary) goes there, the longest matching path first, before the host's own route.
Route keys are case-insensitive, as in gorouter.

A host maps to a pool that may be empty: that is a known route with no RUNNING instance (503),
unlike a host with no pool at all (404). A service host name wins over an app route of the
same name, so an app cannot capture `receptor.<domain>`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import structlog

from lattice.models import ActualLRP, ActualState, Route, SchedulingInfo, ServiceRecord
from lattice.store import Change, Etcd, Informer, keys
from router.pool import Balancer, Endpoint, Pool

log = structlog.get_logger("router.table")

_T = TypeVar("_T")

Claims = dict[str, tuple[Endpoint, ...]]   # host -> the endpoints one app or record gives it


def normalize_host(host: str) -> str:
    """`Web.Example.COM:8080` -> `web.example.com`; `[::1]:80` -> `[::1]`; drops a final dot."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1] if end != -1 else host
    name, colon, port = host.rpartition(":")
    if colon and port.isdigit():
        host = name
    return host.rstrip(".")


def normalize_route(route: str) -> str:
    """`Web.Example.com/API/` -> `web.example.com/api`: a host name, maybe with a path."""
    host, slash, path = route.partition("/")
    host = normalize_host(host)
    path = path.strip("/").lower()
    return f"{host}/{path}" if slash and path else host


def _request_path(target: bytes) -> str:
    """The lower-cased path of a request target, without query or fragment."""
    path = target.split(b"?", 1)[0].split(b"#", 1)[0].decode("latin-1").lower()
    if not path.startswith("/"):
        # absolute-form (`http://host/path`): the path starts at the first slash after `//`
        after = path.find("//")
        slash = path.find("/", after + 2 if after != -1 else 0)
        path = path[slash:] if slash != -1 else "/"
    return path


def split_address(address: str) -> tuple[str, int]:
    """`host:port` (or `[v6]:port`) of a service record -> (host, port); ValueError if bad."""
    host, colon, port = address.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"service address {address!r} is not host:port")
    return host.strip("[]"), int(port)


def _candidates(host: str) -> Iterable[str]:
    """The exact name, then wildcard routes from the most specific: a.b.c -> *.b.c -> *.c."""
    yield host
    dot = host.find(".")
    while dot != -1:
        yield "*" + host[dot:]
        dot = host.find(".", dot + 1)


class RouteTable:
    def __init__(self, new_balancer: Callable[[], Balancer] | None = None) -> None:
        """`new_balancer`: the strategy of each app route's pool (default round-robin)."""
        self._new_balancer = new_balancer
        self._routes: dict[str, tuple[Route, ...]] = {}
        self._instances: dict[str, dict[int, ActualLRP]] = {}
        self._app_claims: dict[str, Claims] = {}        # process_guid -> its hosts' endpoints
        self._host_apps: dict[str, set[str]] = {}       # host -> process_guids routing it
        self._app_pools: dict[str, Pool] = {}
        self._services: dict[str, ServiceRecord] = {}   # etcd key -> record
        self._host_services: dict[str, set[str]] = {}   # host -> etcd keys of its records
        self._service_pools: dict[str, Pool] = {}
        self._paths: dict[str, list[str]] = {}          # host -> its route paths, longest first
        self._autoscaled: set[str] = set()              # process_guids that scale to zero
        # Called with a pool that scalable apps route to, each time it has endpoints again:
        # held requests go on at once (router/activation.py).
        self.on_pool_ready: Callable[[Pool], None] | None = None
        # Called when an instance is paused: requests still in flight to it must not freeze.
        self.on_instance_paused: Callable[[ActualLRP], None] | None = None

    # -- reading -----------------------------------------------------------------------------

    def lookup(self, host: str, target: bytes = b"/") -> Pool | None:
        """The pool for a Host header value (case and `:port` ignored) and a request target;
        None: unknown host.

        The pool may be empty: the host is a known route with no endpoint right now.
        """
        if self._paths:
            return self._lookup_with_paths(host, target)
        # Fast path: most Host headers are already a lower-case name without a port.
        pool = self._service_pools.get(host)
        if pool is None:
            pool = self._app_pools.get(host)
        if pool is not None:
            return pool
        name = normalize_host(host)
        for candidate in _candidates(name):
            pool = self._service_pools.get(candidate)
            if pool is None:
                pool = self._app_pools.get(candidate)
            if pool is not None:
                return pool
        return None

    def _lookup_with_paths(self, host: str, target: bytes) -> Pool | None:
        path = _request_path(target)
        for candidate in _candidates(normalize_host(host)):
            for route_path in self._paths.get(candidate, ()):
                if path == route_path or path.startswith(route_path + "/"):
                    pool = self._app_pools.get(candidate + route_path)
                    if pool is not None:
                        return pool
            pool = self._service_pools.get(candidate)
            if pool is None:
                pool = self._app_pools.get(candidate)
            if pool is not None:
                return pool
        return None

    def snapshot(self) -> dict[str, tuple[Endpoint, ...]]:
        """Every host and its endpoints, services over apps (for logs, debugging and tests)."""
        table = {host: pool.endpoints for host, pool in self._app_pools.items()}
        table.update({host: pool.endpoints for host, pool in self._service_pools.items()})
        return table

    # -- wiring ------------------------------------------------------------------------------

    def informers(self, etcd: Etcd) -> list[Informer]:
        """The three informers that keep this table current; the caller runs them."""
        return [
            Informer(etcd, keys.SCHEDULING, self.on_scheduling_change),
            Informer(etcd, keys.ACTUAL, self.on_actual_change),
            Informer(etcd, keys.SERVICES, self.on_service_change),
        ]

    # -- changes -----------------------------------------------------------------------------

    def on_scheduling_change(self, change: Change) -> None:
        guid = change.key[len(keys.SCHEDULING):]
        info: SchedulingInfo | None = None
        if change.new is None:
            self._routes.pop(guid, None)
        else:
            info = _decode(change, SchedulingInfo.from_dict)
            if info is None:
                return
            self._routes[guid] = info.routes
        scalable = change.new is not None and info is not None and info.autoscale is not None
        if scalable != (guid in self._autoscaled):
            if scalable:
                self._autoscaled.add(guid)
            else:
                self._autoscaled.discard(guid)
            for host in self._app_claims.get(guid, {}):
                self._mark_scalable(host)
        self._refresh_app(guid)

    def on_actual_change(self, change: Change) -> None:
        try:
            guid, index = keys.parse_actual(change.key)
        except ValueError:
            log.warning("record-unreadable", key=change.key, error="not an actual LRP key")
            return
        instances = self._instances.setdefault(guid, {})
        if change.new is None:
            instances.pop(index, None)
        else:
            actual = _decode(change, ActualLRP.from_dict)
            if actual is None:
                return
            before = instances.get(index)
            instances[index] = actual
            if actual.paused and (before is None or not before.paused) and (
                self.on_instance_paused is not None
            ):
                self.on_instance_paused(actual)
        if not instances:
            del self._instances[guid]
        self._refresh_app(guid)

    def on_service_change(self, change: Change) -> None:
        new: ServiceRecord | None = None
        if change.new is not None:
            new = _decode(change, ServiceRecord.from_dict)
            if new is None:
                return
            try:
                split_address(new.address)
            except ValueError as exc:
                log.warning("record-unreadable", key=change.key, error=str(exc))
                return
        old = self._services.pop(change.key, None)
        if new is not None:
            self._services[change.key] = new
        old_hosts = {normalize_host(h) for h in old.hostnames} if old else set()
        new_hosts = {normalize_host(h) for h in new.hostnames} if new else set()
        for host in old_hosts - new_hosts:
            self._host_services.get(host, set()).discard(change.key)
        for host in new_hosts:
            self._host_services.setdefault(host, set()).add(change.key)
        for host in old_hosts | new_hosts:
            self._rebuild_service_host(host)

    # -- apps --------------------------------------------------------------------------------

    def _claims_of(self, guid: str) -> Claims:
        routes = self._routes.get(guid, ())
        if not routes:
            return {}
        running = [
            actual
            for _, actual in sorted(self._instances.get(guid, {}).items())
            if actual.state is ActualState.RUNNING and actual.address and not actual.paused
        ]
        claims: dict[str, list[Endpoint]] = {}
        for route in routes:
            endpoints = [
                Endpoint(
                    actual.address, mapping.host_port, guid, actual.index, actual.instance_guid
                )
                for actual in running
                for mapping in actual.ports
                if mapping.container_port == route.port
            ]
            for host in route.hostnames:
                claims.setdefault(normalize_route(host), []).extend(endpoints)
        return {host: tuple(dict.fromkeys(endpoints)) for host, endpoints in claims.items()}

    def _refresh_app(self, guid: str) -> None:
        new = self._claims_of(guid)
        old = self._app_claims.pop(guid, {})
        if new:
            self._app_claims[guid] = new
        for host in old.keys() | new.keys():
            if old.get(host) == new.get(host):
                continue
            apps = self._host_apps.setdefault(host, set())
            if host in new:
                apps.add(guid)
            else:
                apps.discard(guid)
            self._rebuild_app_host(host)

    def _rebuild_app_host(self, host: str) -> None:
        guids = sorted(self._host_apps.get(host, ()))
        if not guids:
            self._host_apps.pop(host, None)
            if self._app_pools.pop(host, None) is not None:
                self._forget_path(host)
                log.info("route-unregistered", host=host)
            return
        endpoints = [e for guid in guids for e in self._app_claims[guid][host]]
        pool = self._app_pools.get(host)
        if pool is None:
            balancer = self._new_balancer() if self._new_balancer is not None else None
            self._app_pools[host] = pool = Pool(endpoints, balancer)
            self._remember_path(host)
            log.info("route-registered", host=host, process_guids=guids, endpoints=len(endpoints))
        else:
            pool.replace(endpoints)
            log.debug("route-endpoints-changed", host=host, endpoints=len(endpoints))
        self._mark_scalable(host)
        if pool.scalable and endpoints and self.on_pool_ready is not None:
            self.on_pool_ready(pool)

    def _mark_scalable(self, host: str) -> None:
        pool = self._app_pools.get(host)
        if pool is not None:
            pool.scalable = tuple(
                g for g in sorted(self._host_apps.get(host, ())) if g in self._autoscaled
            )

    def has_paused(self, guid: str) -> bool:
        """Whether an instance of the app is paused: a wake thaws it rather than starts one."""
        return any(a.paused for a in self._instances.get(guid, {}).values())

    def service_addresses(self, name: str) -> list[str]:
        """`host:port` of every record of a box service (`receptor`: the brain's API)."""
        return sorted(r.address for r in self._services.values() if r.name == name)

    def _remember_path(self, route: str) -> None:
        name, slash, path = route.partition("/")
        if slash:
            paths = self._paths.setdefault(name, [])
            paths.append("/" + path)
            paths.sort(key=len, reverse=True)

    def _forget_path(self, route: str) -> None:
        name, slash, path = route.partition("/")
        if slash and name in self._paths:
            paths = self._paths[name]
            paths.remove("/" + path)
            if not paths:
                del self._paths[name]

    # -- services ----------------------------------------------------------------------------

    def _rebuild_service_host(self, host: str) -> None:
        record_keys = sorted(self._host_services.get(host, ()))
        if not record_keys:
            self._host_services.pop(host, None)
            if self._service_pools.pop(host, None) is not None:
                log.info("service-route-unregistered", host=host)
            return
        endpoints = []
        for key in record_keys:
            record = self._services[key]
            address, port = split_address(record.address)
            endpoints.append(Endpoint(address, port, "", 0, record.instance_id))
        pool = self._service_pools.get(host)
        if pool is None:
            self._service_pools[host] = Pool(endpoints)
            log.info("service-route-registered", host=host, addresses=[str(e) for e in endpoints])
        else:
            pool.replace(endpoints)
            log.debug("service-route-endpoints-changed", host=host, endpoints=len(endpoints))


def _decode(change: Change, from_dict: Callable[[dict[str, Any]], _T]) -> _T | None:
    """The record in a change, or None (logged) if it cannot be read: a bad record must not
    take the router down, and the previous state of that key is the best guess we have."""
    assert change.new is not None
    try:
        return from_dict(json.loads(change.new))
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("record-unreadable", key=change.key, error=f"{type(exc).__name__}: {exc}")
        return None
