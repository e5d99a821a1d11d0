"""The route table fed with informer changes directly: what each change does to the pools."""

from __future__ import annotations

import json

from structlog.testing import capture_logs

from lattice.models import (
    ActualLRP,
    ActualState,
    ModificationTag,
    PortMapping,
    Route,
    SchedulingInfo,
    ServiceRecord,
)
from lattice.store import Change, keys
from router.pool import Endpoint
from router.table import RouteTable, normalize_host


def scheduling(table: RouteTable, guid: str, *routes: Route) -> None:
    info = SchedulingInfo(guid, 1, 64, 0, 100, routes, ModificationTag("e"))
    table.on_scheduling_change(
        Change(keys.scheduling(guid), None, json.dumps(info.to_dict()).encode())
    )


def actual(table: RouteTable, guid: str, index: int, state: ActualState = ActualState.RUNNING,
           *, host_port: int | None = None, container_port: int = 8080,
           address: str = "127.0.0.1") -> None:
    lrp = ActualLRP(guid, index, f"{guid}-{index}", state, since=1, cell_id="c", address=address,
                    ports=(PortMapping(container_port, host_port or 60000 + index),))
    value = json.dumps(lrp.to_dict()).encode()
    table.on_actual_change(Change(keys.actual(guid, index), None, value))


def service(table: RouteTable, name: str, address: str, *hosts: str) -> None:
    record = ServiceRecord(name, "i1", address, hosts)
    table.on_service_change(
        Change(keys.service(name, "i1"), None, json.dumps(record.to_dict()).encode())
    )


def ports(table: RouteTable, host: str) -> list[int] | None:
    pool = table.lookup(host)
    return None if pool is None else sorted(e.port for e in pool.endpoints)


def test_running_instances_on_the_routes_port_become_endpoints() -> None:
    table = RouteTable()
    scheduling(table, "web", Route(("web.x",), 8080))
    actual(table, "web", 0)
    actual(table, "web", 1, ActualState.CLAIMED)
    actual(table, "web", 2, container_port=9090)              # not the route's port
    actual(table, "web", 3, address="")                       # no address yet
    actual(table, "web", 4)
    assert ports(table, "web.x") == [60000, 60004]
    pool = table.lookup("web.x")
    assert pool is not None
    assert Endpoint("127.0.0.1", 60000, "web", 0, "web-0") in pool.endpoints


def test_a_route_without_running_instances_is_known_but_empty() -> None:
    table = RouteTable()
    scheduling(table, "web", Route(("web.x",), 8080))
    actual(table, "web", 0, ActualState.UNCLAIMED)
    assert ports(table, "web.x") == []
    assert table.lookup("other.x") is None


def test_instances_arriving_before_their_routes_are_picked_up() -> None:
    table = RouteTable()
    actual(table, "web", 0)
    assert table.lookup("web.x") is None
    scheduling(table, "web", Route(("web.x", "www.x"), 8080))
    assert ports(table, "web.x") == [60000]
    assert ports(table, "www.x") == [60000]


def test_a_crash_removes_the_endpoint_and_the_pool_object_stays() -> None:
    table = RouteTable()
    scheduling(table, "web", Route(("web.x",), 8080))
    actual(table, "web", 0)
    actual(table, "web", 1)
    pool = table.lookup("web.x")
    actual(table, "web", 1, ActualState.CRASHED)
    assert table.lookup("web.x") is pool      # updated in place: the round-robin cursor lives on
    assert ports(table, "web.x") == [60000]
    table.on_actual_change(Change(keys.actual("web", 0), b"{}", None))
    assert ports(table, "web.x") == []


def test_a_change_to_one_app_leaves_other_apps_pools_alone() -> None:
    table = RouteTable()
    scheduling(table, "web", Route(("web.x",), 8080))
    scheduling(table, "api", Route(("api.x",), 8080))
    actual(table, "web", 0)
    actual(table, "api", 0, host_port=61000)
    api_pool = table.lookup("api.x")
    assert api_pool is not None
    api_endpoints = api_pool.endpoints
    actual(table, "web", 1)
    assert table.lookup("api.x") is api_pool
    assert api_pool.endpoints is api_endpoints


def test_removing_the_desired_app_or_a_hostname_unregisters_its_route() -> None:
    table = RouteTable()
    scheduling(table, "web", Route(("web.x", "old.x"), 8080))
    actual(table, "web", 0)
    scheduling(table, "web", Route(("web.x",), 8080))
    assert table.lookup("old.x") is None
    assert ports(table, "web.x") == [60000]
    table.on_scheduling_change(Change(keys.scheduling("web"), b"{}", None))
    assert table.lookup("web.x") is None
    assert table.snapshot() == {}


def test_two_apps_on_one_hostname_share_its_pool() -> None:
    table = RouteTable()
    scheduling(table, "blue", Route(("web.x",), 8080))
    scheduling(table, "green", Route(("web.x",), 8080))
    actual(table, "blue", 0, host_port=61000)
    actual(table, "green", 0, host_port=62000)
    assert ports(table, "web.x") == [61000, 62000]
    table.on_scheduling_change(Change(keys.scheduling("blue"), b"{}", None))
    assert ports(table, "web.x") == [62000]


def test_lookup_ignores_case_port_and_a_final_dot() -> None:
    table = RouteTable()
    scheduling(table, "web", Route(("web.x",), 8080))
    actual(table, "web", 0)
    for host in ("WEB.X", "web.x:8080", "Web.X.", "web.x.:80"):
        assert ports(table, host) == [60000], host


def test_wildcard_routes_match_the_most_specific() -> None:
    table = RouteTable()
    scheduling(table, "any", Route(("*.x",), 8080))
    scheduling(table, "apps", Route(("*.apps.x",), 8080))
    actual(table, "any", 0, host_port=61000)
    actual(table, "apps", 0, host_port=62000)
    assert ports(table, "a.apps.x") == [62000]
    assert ports(table, "b.x") == [61000]
    assert table.lookup("x") is None


def test_services_route_and_beat_an_app_of_the_same_name() -> None:
    table = RouteTable()
    scheduling(table, "impostor", Route(("receptor.x",), 8080))
    actual(table, "impostor", 0)
    service(table, "receptor", "127.0.0.1:4000", "receptor.x")
    pool = table.lookup("Receptor.X:8080")
    assert pool is not None
    assert pool.endpoints == (Endpoint("127.0.0.1", 4000, "", 0, "i1"),)
    table.on_service_change(Change(keys.service("receptor", "i1"), b"{}", None))
    assert ports(table, "receptor.x") == [60000]     # the app's route shows again


def test_a_service_record_that_changes_hostnames_leaves_the_old_one() -> None:
    table = RouteTable()
    service(table, "doppler", "127.0.0.1:4001", "doppler.a")
    service(table, "doppler", "127.0.0.1:4002", "doppler.b")
    assert table.lookup("doppler.a") is None
    assert ports(table, "doppler.b") == [4002]


def test_unreadable_records_are_logged_and_change_nothing() -> None:
    table = RouteTable()
    scheduling(table, "web", Route(("web.x",), 8080))
    actual(table, "web", 0)
    service(table, "receptor", "127.0.0.1:4000", "receptor.x")
    with capture_logs() as logs:
        table.on_scheduling_change(Change(keys.scheduling("web"), None, b"not json"))
        table.on_actual_change(Change(keys.actual("web", 0), None, b'{"index": 0}'))
        table.on_actual_change(Change(keys.ACTUAL + "web/not-a-number", None, b"{}"))
        record = ServiceRecord("receptor", "i1", "no-port", ("receptor.x",))
        table.on_service_change(
            Change(keys.service("receptor", "i1"), None, json.dumps(record.to_dict()).encode())
        )
    assert [entry["event"] for entry in logs] == ["record-unreadable"] * 4
    assert ports(table, "web.x") == [60000]
    assert ports(table, "receptor.x") == [4000]


def test_normalize_host() -> None:
    assert normalize_host(" Web.Example.COM:8080 ") == "web.example.com"
    assert normalize_host("[::1]:8080") == "[::1]"
    assert normalize_host("example.com.") == "example.com"
    assert normalize_host("example.com:http") == "example.com:http"


def test_path_routes_take_the_longest_matching_prefix() -> None:
    table = RouteTable()
    scheduling(table, "site", Route(("shop.x",), 8080))
    scheduling(table, "api", Route(("shop.x/api",), 8080))
    scheduling(table, "v2", Route(("Shop.X/API/v2/",), 8080))
    actual(table, "site", 0, host_port=61000)
    actual(table, "api", 0, host_port=62000)
    actual(table, "v2", 0, host_port=63000)

    def port_for(target: bytes, host: str = "shop.x") -> int | None:
        pool = table.lookup(host, target)
        return None if pool is None else pool.endpoints[0].port

    assert port_for(b"/") == 61000
    assert port_for(b"/apix") == 61000            # a prefix only on a segment boundary
    assert port_for(b"/api") == 62000
    assert port_for(b"/api/users?x=/api/v2") == 62000
    assert port_for(b"/API/V2/items") == 63000
    assert port_for(b"http://shop.x/api/v2") == 63000
    assert port_for(b"/api/v2", "SHOP.x:8080") == 63000
    assert port_for(b"/api", "other.x") is None


def test_a_path_route_without_a_host_route_and_its_removal() -> None:
    table = RouteTable()
    scheduling(table, "api", Route(("only.x/api",), 8080))
    actual(table, "api", 0, host_port=62000)
    assert table.lookup("only.x", b"/api/a") is not None
    assert table.lookup("only.x", b"/") is None
    scheduling(table, "api", Route(("only.x",), 8080))
    assert table.lookup("only.x", b"/") is not None
    assert table.lookup("only.x", b"/api/a") is table.lookup("only.x", b"/")


def test_path_routes_under_a_wildcard_host() -> None:
    table = RouteTable()
    scheduling(table, "wild", Route(("*.x/static",), 8080))
    scheduling(table, "web", Route(("a.x",), 8080))
    actual(table, "wild", 0, host_port=61000)
    actual(table, "web", 0, host_port=62000)
    wild, web = table.lookup("b.x", b"/static/app.js"), table.lookup("a.x", b"/static/app.js")
    assert wild is not None
    assert [e.port for e in wild.endpoints] == [61000]
    # The exact host wins over a wildcard, whatever the path.
    assert web is not None
    assert [e.port for e in web.endpoints] == [62000]
