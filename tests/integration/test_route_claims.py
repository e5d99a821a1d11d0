"""Route claims cannot race (brain/route_claims.py): against a real etcd and real brains.

Two brains serve the API on one etcd, each with its own caches, and the requests go to both: an
app created on one brain is refused its route on the other at once, and of requests racing for
one host exactly one wins, whatever the interleaving. The last test does it with two brain
processes, as a box with two brains runs them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from lattice.store import MAX_TXN_OPS, Etcd, keys
from tests.integration.test_cluster_brain_ha import running_brains
from tests.support_brain import brains_in_process, call

DOMAIN = "box.localhost"
RACERS = 8


@pytest.fixture
async def brains(etcd_endpoint: str, demo_image: str) -> AsyncIterator[list[str]]:
    """Two brains in this process on one etcd; yields their API base URLs."""
    async with brains_in_process(etcd_endpoint, DOMAIN, count=2) as urls:
        yield urls


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def app(guid: str, image: str, host: str, *, shared: bool = False) -> dict[str, Any]:
    route: dict[str, Any] = {"hostnames": [host]}
    if shared:
        route["shared"] = True
    return {"process_guid": guid, "image": image, "instances": 0, "routes": [route]}


def refusal(body: Any) -> str:
    """The route field's message of a 400, asserting it is one."""
    assert body["error"]["type"] == "InvalidRequest", body
    return str(body["error"]["fields"][0]["message"])


async def test_an_app_just_created_on_one_brain_keeps_its_route_on_the_other(
    brains: list[str], http: aiohttp.ClientSession, demo_image: str
) -> None:
    for i in range(30):
        host = f"r{i}.{DOMAIN}"
        first, second = brains[i % 2], brains[(i + 1) % 2]
        status, _ = await call(http, "POST", f"{first}/v1/desired_lrps",
                               app(f"a{i}", demo_image, host))
        assert status == 201
        status, body = await call(http, "POST", f"{second}/v1/desired_lrps",
                                  app(f"b{i}", demo_image, host))
        assert status == 400, (i, body)
        assert f"already routed to app a{i}" in refusal(body)
    status, apps = await call(http, "GET", f"{brains[0]}/v1/desired_lrps")
    assert sorted(lrp["process_guid"] for lrp in apps) == sorted(f"a{i}" for i in range(30))


async def test_of_racing_creates_for_one_route_exactly_one_wins(
    brains: list[str], http: aiohttp.ClientSession, demo_image: str
) -> None:
    host = f"race.{DOMAIN}"
    answers = await asyncio.gather(*(
        call(http, "POST", f"{brains[i % 2]}/v1/desired_lrps", app(f"racer{i}", demo_image, host))
        for i in range(RACERS)
    ))
    winners = [i for i, (status, _) in enumerate(answers) if status == 201]
    assert len(winners) == 1, answers
    # A loser re-reads the owners once its guarded write fails: it sees the winner, so 400.
    for i, (status, body) in enumerate(answers):
        if i != winners[0]:
            assert status == 400, body
            assert f"already routed to app racer{winners[0]}" in refusal(body)
    status, apps = await call(http, "GET", f"{brains[1]}/v1/desired_lrps")
    assert [lrp["process_guid"] for lrp in apps] == [f"racer{winners[0]}"]


async def test_racing_creates_of_a_shared_route_all_win(
    brains: list[str], http: aiohttp.ClientSession, demo_image: str
) -> None:
    host = f"shared.{DOMAIN}"
    answers = await asyncio.gather(*(
        call(http, "POST", f"{brains[i % 2]}/v1/desired_lrps",
             app(f"sharer{i}", demo_image, host, shared=True))
        for i in range(RACERS)
    ))
    assert [status for status, _ in answers] == [201] * RACERS, answers


async def test_an_update_and_a_create_racing_for_one_route(
    brains: list[str], http: aiohttp.ClientSession, demo_image: str
) -> None:
    for i in range(10):
        host = f"upd{i}.{DOMAIN}"
        status, _ = await call(http, "POST", f"{brains[0]}/v1/desired_lrps",
                               {"process_guid": f"old{i}", "image": demo_image, "instances": 0})
        assert status == 201
        (updated, update_body), (created, create_body) = await asyncio.gather(
            call(http, "PUT", f"{brains[i % 2]}/v1/desired_lrps/old{i}",
                 {"routes": [{"hostnames": [host]}]}),
            call(http, "POST", f"{brains[(i + 1) % 2]}/v1/desired_lrps",
                 app(f"new{i}", demo_image, host)),
        )
        assert sorted((updated, created)) in ([201, 400], [204, 400]), (i, update_body,
                                                                         create_body)
        if updated == 204:
            assert f"already routed to app old{i}" in refusal(create_body)
        else:
            assert f"already routed to app new{i}" in refusal(update_body)
        owners = set()
        for guid in (f"old{i}", f"new{i}"):
            status, lrp = await call(http, "GET", f"{brains[0]}/v1/desired_lrps/{guid}")
            if status == 200 and any(host in r["hostnames"] for r in lrp.get("routes", [])):
                owners.add(guid)
        assert len(owners) == 1, owners


async def test_a_function_and_an_app_racing_for_one_host(
    brains: list[str], http: aiohttp.ClientSession, demo_image: str
) -> None:
    for i in range(10):
        name = f"fn{i}"
        host = f"{name}.{DOMAIN}"
        (fn_status, fn_body), (app_status, app_body) = await asyncio.gather(
            call(http, "POST", f"{brains[i % 2]}/v1/functions",
                 {"name": name, "image": demo_image, "command": ["cat"]}),
            call(http, "POST", f"{brains[(i + 1) % 2]}/v1/desired_lrps",
                 app(f"app{i}", demo_image, host)),
        )
        assert sorted((fn_status, app_status)) == [201, 400], (i, fn_body, app_body)
        if fn_status == 201:
            assert f"route of function {name}" in refusal(app_body)
        else:
            assert f"already routed to app app{i}" in refusal(fn_body)


def test_two_brain_processes_let_one_of_racing_creates_win(
    etcd_endpoint: str, tmp_path: Path, demo_image: str
) -> None:
    host = "proc.lattice.localhost"     # the brains' default domain

    async def race(ports: list[int]) -> list[tuple[int, Any]]:
        async with aiohttp.ClientSession() as session:
            return list(await asyncio.gather(*(
                call(session, "POST", f"http://127.0.0.1:{ports[i % 2]}/v1/desired_lrps",
                     app(f"proc{i}", demo_image, host))
                for i in range(RACERS)
            )))

    with running_brains(etcd_endpoint, tmp_path) as started:
        answers = asyncio.run(race([brain.port for brain in started]))
    statuses = sorted(status for status, _ in answers)
    assert statuses == [201] + [400] * (RACERS - 1), answers


async def test_an_app_of_many_instances_claims_its_route_within_etcds_limit(
    brains: list[str], http: aiohttp.ClientSession, demo_image: str, etcd: Etcd
) -> None:
    # The first transaction holds the desired record, the claim's compare and bump and the
    # first instances: past MAX_TXN_OPS etcd would refuse it ("too many operations in txn").
    body = {**app("big", demo_image, f"big.{DOMAIN}"), "instances": 3 * MAX_TXN_OPS}
    status, created = await call(http, "POST", f"{brains[0]}/v1/desired_lrps", body)
    assert status == 201, created
    kvs, _ = await etcd.get_prefix(keys.actual_prefix("big"))
    assert len(kvs) == 3 * MAX_TXN_OPS
    assert await etcd.get(keys.ROUTE_CLAIMS_VERSION) is not None
