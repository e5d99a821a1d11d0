"""The brain's API against a real etcd and the real Docker engine (for image checks)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from lattice.store import Etcd, keys
from tests.support_brain import brains_in_process, receptor_records

DOMAIN = "box.localhost"


@pytest.fixture
async def api(etcd_endpoint: str, demo_image: str) -> AsyncIterator[str]:
    """The brain serving on a free port; yields its base URL, read from its service record."""
    async with brains_in_process(etcd_endpoint, DOMAIN) as (url,):
        (record,) = await receptor_records(etcd_endpoint)
        assert record.hostnames == (f"receptor.{DOMAIN}",)
        yield url


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(http: aiohttp.ClientSession, url: str, body: object) -> tuple[int, dict]:
    async with http.post(url, json=body) as r:
        return r.status, await r.json()


async def test_create_then_read_back(api: str, http: aiohttp.ClientSession, demo_image: str):
    status, created = await post(http, f"{api}/v1/desired_lrps",
                                 {"process_guid": "web", "image": demo_image, "instances": 2,
                                  "routes": [{"hostnames": [f"web.{DOMAIN}"]}]})
    assert status == 201
    assert created["ports"] == [8080]            # the demo image EXPOSEs 8080
    assert created["routes"] == [{"hostnames": [f"web.{DOMAIN}"], "port": 8080}]
    async with http.get(f"{api}/v1/desired_lrps/web") as r:
        assert r.status == 200
        assert (await r.json())["instances"] == 2
    async with http.get(f"{api}/v1/actual_lrps/web") as r:
        actuals = await r.json()
    assert [a["index"] for a in actuals] == [0, 1]
    assert {a["state"] for a in actuals} <= {"UNCLAIMED", "CLAIMED"}


async def test_malformed_json_is_a_400_not_a_500(api: str, http: aiohttp.ClientSession):
    for body in (b"{not json", b"\xff\xfe", b""):
        async with http.post(f"{api}/v1/desired_lrps", data=body,
                             headers={"Content-Type": "application/json"}) as r:
            assert r.status == 400
            assert (await r.json())["error"]["type"] == "InvalidJSON"
    async with http.put(f"{api}/v1/desired_lrps/x", data=b"[") as r:
        assert r.status in (400, 404)


async def test_every_invalid_field_is_listed_and_nothing_is_written(
    api: str, http: aiohttp.ClientSession, etcd: Etcd
):
    status, body = await post(http, f"{api}/v1/desired_lrps", {
        "process_guid": "bad/name", "image": "no-such-image:never", "instances": -1,
        "memory_mb": -1, "ports": [70000], "env": [{"name": "", "value": "x"}],
    })
    assert status == 400
    assert body["error"]["type"] == "InvalidRequest"
    fields = {f["field"] for f in body["error"]["fields"]}
    assert {"process_guid", "image", "instances", "memory_mb", "ports[0]", "env[0].name"} <= fields
    kvs, _ = await etcd.get_prefix(keys.ROOT + "desired/")
    assert kvs == []


async def test_an_image_that_does_not_exist_is_refused(api: str, http: aiohttp.ClientSession):
    status, body = await post(http, f"{api}/v1/desired_lrps",
                              {"process_guid": "ghost", "image": "no-such-image:never"})
    assert status == 400
    assert [f["field"] for f in body["error"]["fields"]] == ["image"]


async def test_duplicates_conflicts_and_system_routes(
    api: str, http: aiohttp.ClientSession, demo_image: str
):
    first = {"process_guid": "one", "image": demo_image,
             "routes": [{"hostnames": [f"one.{DOMAIN}"]}]}
    assert (await post(http, f"{api}/v1/desired_lrps", first))[0] == 201
    status, body = await post(http, f"{api}/v1/desired_lrps", first)
    assert (status, body["error"]["type"]) == (409, "DesiredLRPAlreadyExists")
    for host in (f"one.{DOMAIN}", f"receptor.{DOMAIN}", f"DOPPLER.{DOMAIN}"):
        status, body = await post(http, f"{api}/v1/desired_lrps",
                                  {"process_guid": "two", "image": demo_image,
                                   "routes": [{"hostnames": [host]}]})
        assert status == 400, host
        assert body["error"]["fields"][0]["field"] == "routes[0].hostnames"


async def test_update_and_delete(api: str, http: aiohttp.ClientSession, demo_image: str):
    await post(http, f"{api}/v1/desired_lrps", {"process_guid": "app", "image": demo_image})
    async with http.put(f"{api}/v1/desired_lrps/app", json={"instances": 3}) as r:
        assert r.status == 204
    async with http.put(f"{api}/v1/desired_lrps/app", json={"instances": -2}) as r:
        assert r.status == 400
    async with http.get(f"{api}/v1/desired_lrps/app") as r:
        body = await r.json()
        assert body["instances"] == 3
        assert body["modification_tag"]["index"] == 1
    async with http.delete(f"{api}/v1/desired_lrps/app") as r:
        assert r.status == 204
    async with http.delete(f"{api}/v1/desired_lrps/app") as r:
        assert (r.status, (await r.json())["error"]["type"]) == (404, "DesiredLRPNotFound")
    async with http.get(f"{api}/v1/actual_lrps/app") as r:
        assert await r.json() == []
