"""Who may route a host name: the box's own names never, another app's only if both share it."""

from __future__ import annotations

import json

import pytest

from lattice.brain.routes import conflicts
from lattice.models import (
    ActualLRP,
    ActualState,
    ModificationTag,
    PortMapping,
    Route,
    SchedulingInfo,
)
from lattice.models.desired import parse_desired_lrp
from lattice.models.errors import ValidationError
from lattice.store import Change, keys
from router.table import RouteTable

DOMAIN = "box.localhost"


def app(guid: str, *routes: Route) -> SchedulingInfo:
    return SchedulingInfo(process_guid=guid, instances=1, memory_mb=128, disk_mb=1024,
                          cpu_weight=100, routes=routes, modification_tag=ModificationTag("e"))


def check(*routes: Route, taken: dict[str, SchedulingInfo], guid: str = "green") -> list[str]:
    return [str(problem) for problem in conflicts(
        routes, process_guid=guid, domain=DOMAIN, taken=taken, service_hostnames=set())]


def test_system_hosts_are_reserved_even_when_shared() -> None:
    problems = check(Route((f"receptor.{DOMAIN}",), 8080, shared=True), taken={})
    assert problems == [f"routes[0].hostnames: receptor.{DOMAIN} is reserved by the box"]


def test_another_apps_host_is_refused_unless_both_share_it() -> None:
    web = f"web.{DOMAIN}"
    for blue_shares, green_shares, allowed in [(False, False, False), (True, False, False),
                                               (False, True, False), (True, True, True)]:
        taken = {"blue": app("blue", Route((web,), 8080, shared=blue_shares))}
        problems = check(Route((web,), 8080, shared=green_shares), taken=taken)
        assert (problems == []) is allowed, (blue_shares, green_shares, problems)
        if not allowed:
            assert f"{web} is already routed to app blue" in problems[0]
            assert "--share-routes" in problems[0]


def test_one_app_that_does_not_share_is_enough_to_refuse() -> None:
    web = f"web.{DOMAIN}"
    taken = {"blue": app("blue", Route((web,), 8080, shared=True)),
             "red": app("red", Route((web,), 8080, shared=False))}
    for order in (taken, dict(reversed(taken.items()))):
        assert check(Route((web,), 8080, shared=True), taken=order)


def test_an_app_may_keep_its_own_hosts_and_case_does_not_matter() -> None:
    taken = {"green": app("green", Route((f"web.{DOMAIN}",), 8080))}
    assert check(Route((f"WEB.{DOMAIN}",), 8080), taken=taken) == []
    assert check(Route((f"WEB.{DOMAIN}",), 8080), taken=taken, guid="blue")


def test_shared_must_be_a_boolean_and_defaults_to_false() -> None:
    body = {"process_guid": "web", "image": "busybox",
            "routes": [{"hostnames": ["a.x"], "port": 8080},
                       {"hostnames": ["b.x"], "port": 8080, "shared": True}]}
    lrp = parse_desired_lrp(body, epoch="e")
    assert [route.shared for route in lrp.scheduling.routes] == [False, True]
    assert SchedulingInfo.from_dict(lrp.scheduling.to_dict()) == lrp.scheduling
    body["routes"] = [{"hostnames": ["a.x"], "port": 8080, "shared": "yes"}]
    with pytest.raises(ValidationError) as refused:
        parse_desired_lrp(body, epoch="e")
    assert "routes[0].shared: must be true or false" in str(refused.value)


def test_the_router_balances_a_shared_host_across_both_apps() -> None:
    table = RouteTable()
    for guid, port in (("blue", 61000), ("green", 62000)):
        info = app(guid, Route(("shop.x",), 8080, shared=True))
        table.on_scheduling_change(
            Change(keys.scheduling(guid), None, json.dumps(info.to_dict()).encode()))
        lrp = ActualLRP(guid, 0, f"{guid}-0", ActualState.RUNNING, since=1, cell_id="c",
                        address="127.0.0.1", ports=(PortMapping(8080, port),))
        table.on_actual_change(
            Change(keys.actual(guid, 0), None, json.dumps(lrp.to_dict()).encode()))
    pool = table.lookup("shop.x")
    assert pool is not None
    assert sorted(e.port for e in pool.endpoints) == [61000, 62000]
