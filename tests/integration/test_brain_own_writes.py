"""The brain's caches learn its own writes (brain/db.py -> ClusterView.learn), so the controller
places a new app without waiting for etcd's watch to send the create back; and the create
handler's route-owner read, made while the image is checked, changes no answer. Real etcd."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path

import aiohttp
import pytest

from lattice import etcd_server
from lattice.brain.controller import Controller, ControllerSettings
from lattice.brain.db import LRPDB
from lattice.brain.state import ClusterView
from lattice.models import (
    DEFAULT_RESTART_POLICY,
    ActualLRP,
    ActualState,
    Capacity,
    CellPresence,
    parse_desired_lrp,
    parse_desired_lrp_update,
)
from lattice.store import Etcd, keys
from tests.support_brain import brains_in_process, call

pytestmark = pytest.mark.integration

DOMAIN = "box.localhost"


@pytest.fixture
async def deaf_view(etcd: Etcd) -> ClusterView:
    """A view loaded once (with one cell present) whose watches are then stopped: whatever it
    holds after that, it learnt from the brain's own writes."""
    cell = CellPresence("cell-a", "127.0.0.1", Capacity(memory_mb=4096, disk_mb=4096,
                                                        containers=10))
    await etcd.put(keys.cell("cell-a"), json.dumps(cell.to_dict()).encode())
    view = ClusterView(etcd)
    tasks = [asyncio.create_task(informer.run()) for informer in view.informers]
    await asyncio.wait_for(view.wait_synced(), 10)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return view


async def stored_actuals(etcd: Etcd, guid: str) -> list[ActualLRP]:
    kvs, _ = await etcd.get_prefix(keys.actual_prefix(guid))
    return [ActualLRP.from_dict(json.loads(kv.value)) for kv in kvs]


async def test_a_create_is_placed_from_what_the_brain_learnt_of_its_own_writes(
    etcd: Etcd, deaf_view: ClusterView
) -> None:
    db = LRPDB(etcd, on_write=deaf_view.learn)
    controller = Controller(view=deaf_view, db=db, policy=DEFAULT_RESTART_POLICY,
                            settings=ControllerSettings(cell_grace_s=0))
    lrp = parse_desired_lrp({"process_guid": "web", "image": "any", "instances": 2},
                            epoch="e1")
    deaf_view.dirty.clear()
    assert await db.create_desired(lrp, time.time_ns())
    assert deaf_view.dirty.is_set()             # what wakes the controller
    info = deaf_view.desired_of("web")
    assert info is not None
    assert info.instances == 2
    seen = sorted(deaf_view.instances_of("web"), key=lambda s: s.actual.index)
    stored = await etcd.get(keys.actual("web", 0))
    assert stored is not None
    assert [s.actual.state for s in seen] == [ActualState.UNCLAIMED] * 2
    assert seen[0].revision == stored.mod_revision      # what the claim compares

    await controller.converge_once()
    assert {a.state for a in await stored_actuals(etcd, "web")} == {ActualState.CLAIMED}
    assignments, _ = await etcd.get_prefix(keys.assignments_of("cell-a"))
    assert len(assignments) == 2
    # The claims were learnt too: a pass that follows does not auction them again.
    assert {s.actual.state for s in deaf_view.instances_of("web")} == {ActualState.CLAIMED}
    assert {a.key for a in deaf_view.snapshot(cells_trusted=True).assignments} == {
        kv.key for kv in assignments}


async def test_an_update_is_learnt_and_its_new_instances_placed(
    etcd: Etcd, deaf_view: ClusterView
) -> None:
    db = LRPDB(etcd, on_write=deaf_view.learn)
    controller = Controller(view=deaf_view, db=db, policy=DEFAULT_RESTART_POLICY,
                            settings=ControllerSettings(cell_grace_s=0))
    lrp = parse_desired_lrp({"process_guid": "api", "image": "any"}, epoch="e1")
    assert await db.create_desired(lrp, time.time_ns())
    await controller.converge_once()
    found = await db.get_scheduling("api")
    assert found is not None
    info, revision = found
    update = parse_desired_lrp_update({"instances": 3}, lrp.run.ports)
    assert await db.update_desired("api", info, revision, update)
    learnt = deaf_view.desired_of("api")
    assert learnt is not None
    assert learnt.instances == 3
    await controller.converge_once()        # creates the new indices, learnt at once
    await controller.converge_once()        # and places them
    states = [a.state for a in await stored_actuals(etcd, "api")]
    assert states == [ActualState.CLAIMED] * 3


async def test_with_etcd_gone_a_bad_create_naming_routes_still_answers_400(
    tmp_path: Path, demo_image: str
) -> None:
    """The owners are read before the body is known to be valid: a failed read must not turn
    a 400 into a 503, and must still answer 503 for a valid body."""
    command, process = await etcd_server.start_on_free_ports(tmp_path / "etcd")
    try:
        async with brains_in_process(command.endpoint, DOMAIN) as (url,), \
                aiohttp.ClientSession() as http:
            process.terminate()
            process.wait(10)
            routes = [{"hostnames": [f"web.{DOMAIN}"]}]
            status, body = await call(http, "POST", f"{url}/v1/desired_lrps", {
                "process_guid": "bad/name", "image": demo_image, "routes": routes})
            assert status == 400
            assert [f["field"] for f in body["error"]["fields"]] == ["process_guid"]
            status, body = await call(http, "POST", f"{url}/v1/desired_lrps", {
                "process_guid": "web", "image": demo_image, "routes": routes})
            assert status == 503
            assert body["error"]["type"] == "ServiceUnavailable"
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(10)
